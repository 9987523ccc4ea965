"""Summary figures of a canonical table (`prefdata stats`), computed with Polars expressions.

Definitions: a prompt is all its turns; `chosen` / `rejected` / `completion` text is the final turn's content;
`mean_chars` of a prompt sums its turns. Duplicates and distinct prompts use curation's key (`curate.text.key_hash`:
NFKC, case and whitespace normalised), so `exact_duplicate_rows` is what `prefdata dedupe` would remove.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from prefdata.curate.text import final_text, key_hash
from prefdata.io.reader import ReadResult


def total_chars(column: str) -> pl.Expr:
    return pl.col(column).list.eval(pl.element().struct.field("content").str.len_chars()).list.sum()


def _mean(expr: pl.Expr) -> pl.Expr:
    return expr.mean().round(3)


def compute(frame: pl.DataFrame, kind: str) -> dict[str, Any]:
    rows = frame.height
    content = {"pairwise": ("prompt", "chosen", "rejected"), "unpaired": ("prompt", "completion", "label"),
               "prompts": ("prompt",)}[kind]
    out: dict[str, Any] = {"rows": rows}
    if rows == 0:
        return out
    keys = pl.DataFrame({c: key_hash(frame, c) if c != "label" else frame[c] for c in content})
    out.update({"distinct_prompts": keys["prompt"].n_unique(), "exact_duplicate_rows": rows - keys.n_unique()})
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
