"""What the checks look at: the canonical table and what came with it, plus shared text expressions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import polars as pl

from prefdata import schema
from prefdata.thresholds import Thresholds

CONVERSATIONS = {"pairwise": ("prompt", "chosen", "rejected"), "unpaired": ("prompt", "completion"),
                 "prompts": ("prompt",)}
PREVIEW = 160


@dataclass
class Inputs:
    frame: pl.DataFrame                          # schema.PAIRS, UNPAIRED or PROMPTS (extra columns allowed)
    kind: str                                    # pairwise | unpaired | prompts
    thresholds: Thresholds = field(default_factory=Thresholds)
    read_dropped: pl.DataFrame | None = None     # rows the reader set aside (schema.DROPPED)
    judgments: pl.DataFrame | None = None        # schema.JUDGMENTS, when the data came with them
    test: pl.DataFrame | None = None             # a held-out split, for prompt leakage
    category: str | None = None                  # a column of `frame` naming each prompt's category
    examples: int = 3                            # offending rows shown per check
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def rows(self) -> int:
        return self.frame.height

    @property
    def conversations(self) -> tuple[str, ...]:
        return tuple(c for c in CONVERSATIONS[self.kind] if c in self.frame.columns)

    def cached(self, name: str, make: Callable[[], Any]) -> Any:
        """A value several checks share (such as the rows' duplicate keys), computed once."""
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]

    def dropped_by(self, reasons: set[str] | None = None, exclude: set[str] = frozenset()) -> pl.DataFrame:
        if self.read_dropped is None:
            return schema.empty(schema.DROPPED)
        kept = ~pl.col("reason").is_in(list(exclude))
        if reasons is not None:
            kept &= pl.col("reason").is_in(list(reasons))
        return self.read_dropped.filter(kept)


def contents(column: str) -> pl.Expr:
    """All turns' contents of a message-list column."""
    return pl.col(column).list.eval(pl.element().struct.field("content"))


def joined_text(column: str) -> pl.Expr:
    """All turns of a conversation as one text (turns separated by a blank line)."""
    return contents(column).list.join("\n\n")


def preview(text: Any) -> Any:
    if isinstance(text, str) and len(text) > PREVIEW:
        return text[:PREVIEW] + "…"
    return text


def flags(frame: pl.DataFrame, expr: pl.Expr) -> pl.Series:
    """A per-row flag, computed once; lazily, so Polars shares repeated sub-expressions (such as the
    normalised keys of chosen and rejected)."""
    return frame.lazy().select(expr.alias("flag")).collect()["flag"]


def example_rows(frame: pl.DataFrame, mask: pl.Expr | pl.Series, n: int, **columns: pl.Expr) -> list[dict[str, Any]]:
    """Up to `n` rows where `mask` holds: 1-based `row`, the row's ids, and the given columns (previewed)."""
    ids = [c for c in ("pair_id", "prompt_id") if c in frame.columns]
    picked = (frame.with_row_index("row", offset=1).filter(mask).head(n)
              .select("row", *ids, *[expr.alias(name) for name, expr in columns.items()]))
    return [{k: preview(v) for k, v in row.items()} for row in picked.iter_rows(named=True)]


def dropped_examples(dropped: pl.DataFrame, n: int) -> list[dict[str, Any]]:
    """Rows a stage removed, as examples: its id, reason and detail (the record's start when no detail)."""
    out = []
    for row in dropped.head(n).iter_rows(named=True):
        item = {"row_id": row["row_id"], "reason": row["reason"]}
        if row["detail"]:
            item["detail"] = preview(row["detail"])
        else:
            record = json.loads(row["record"]) if row["record"] else {}
            item["record"] = preview(json.dumps(record, ensure_ascii=False))
        out.append(item)
    return out
