"""Summary figures of a canonical table (`prefdata stats`), computed with Polars expressions.

Definitions (exact text, no normalisation): a prompt is all its turns; `chosen` / `rejected` /
`completion` text is the final turn's content; `mean_chars` of a prompt sums its turns.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from prefdata.io.ids import conversation_key
from prefdata.io.reader import ReadResult


def final_text(column: str) -> pl.Expr:
    return pl.col(column).list.last().struct.field("content")


def total_chars(column: str) -> pl.Expr:
    return pl.col(column).list.eval(pl.element().struct.field("content").str.len_chars()).list.sum()


def _key(column: str) -> pl.Expr:
    return conversation_key(column, normalised=False)


def _mean(expr: pl.Expr) -> pl.Expr:
    return expr.mean().round(3)


def compute(frame: pl.DataFrame, kind: str) -> dict[str, Any]:
    rows = frame.height
    content = {"pairwise": ("prompt", "chosen", "rejected"), "unpaired": ("prompt", "completion", "label"),
               "prompts": ("prompt",)}[kind]
    out: dict[str, Any] = {"rows": rows}
    if rows == 0:
        return out
    row_key = pl.concat_str([_key(c) if c != "label" else pl.col(c).cast(pl.String) for c in content],
                            separator="\x1d")
    base = frame.select(
        _key("prompt").n_unique().alias("distinct_prompts"),
        (pl.len() - row_key.n_unique()).alias("exact_duplicate_rows"),
    ).row(0, named=True)
    out.update(base)
    if kind == "pairwise":
        figures = frame.select(
            (final_text("chosen") == final_text("rejected")).sum().alias("identical_chosen_rejected"),
            (final_text("chosen").str.len_chars() > final_text("rejected").str.len_chars())
            .mean().round(4).alias("chosen_longer_frac"),
            pl.struct(
                _mean(total_chars("prompt")).alias("prompt"),
                _mean(total_chars("chosen")).alias("chosen"),
                _mean(total_chars("rejected")).alias("rejected"),
            ).alias("mean_chars"),
            pl.col("margin").is_not_null().sum().alias("scored_pairs"),
            _mean(pl.col("margin")).alias("mean_margin"),
        ).row(0, named=True)
    elif kind == "unpaired":
        figures = frame.select(
            pl.col("label").sum().alias("label_true"),
            (~pl.col("label")).sum().alias("label_false"),
            pl.struct(
                _mean(total_chars("prompt")).alias("prompt"),
                _mean(total_chars("completion")).alias("completion"),
            ).alias("mean_chars"),
        ).row(0, named=True)
    else:
        figures = frame.select(pl.struct(_mean(total_chars("prompt")).alias("prompt")).alias("mean_chars")).row(
            0, named=True)
    out.update(figures)
    out["multi_turn_prompts"] = int(frame.select((pl.col("prompt").list.len() > 1).sum()).item())
    return out


def dataset_stats(result: ReadResult) -> dict[str, Any]:
    """`compute` plus where the data came from and what the reader set aside."""
    return {
        "source": result.source,
        "format": result.format,
        "kind": result.kind,
        "rows_in": result.rows_in,
        "dropped": result.drop_counts(),
        **compute(result.frame, result.kind),
    }
