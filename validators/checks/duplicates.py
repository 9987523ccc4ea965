"""Repeated rows: exact (curation's dedupe keys) and near (curation's MinHash clusters)."""

from __future__ import annotations

import polars as pl

from prefdata.validators import rows
from prefdata.validators.inputs import Inputs, example_rows, flags
from prefdata.validators.result import CheckResult


def exact_duplicates(inp: Inputs) -> CheckResult:
    limit = inp.thresholds.max_exact_duplicate_rate
    repeat = flags(inp.frame, rows.exact_repeat(inp))
    count = int(repeat.sum())
    rate = count / inp.rows if inp.rows else 0.0
    return CheckResult("exact_duplicates", "warning", rate <= limit, round(rate, 4), f"<= {limit}",
                       f"{count} rows repeat an earlier row (normalised text)", figures={"rows": count},
                       examples=example_rows(inp.frame, repeat, inp.examples, text=rows.row_text(inp)))


def near_duplicates(inp: Inputs) -> CheckResult:
    limit, similarity = inp.thresholds.max_near_duplicate_rate, inp.thresholds.near_duplicate_threshold
    later = rows.near_repeat(inp.frame.select(rows.row_text(inp))[:, 0], similarity)
    rate = float(later.mean()) if inp.rows else 0.0
    framed = inp.frame.with_columns(later.alias("_later"))
    return CheckResult("near_duplicates", "warning", rate <= limit, round(rate, 4), f"<= {limit}",
                       f"{int(later.sum())} rows near-duplicate an earlier row (word 5-gram Jaccard >= {similarity})",
                       examples=example_rows(framed, pl.col("_later"), inp.examples, text=rows.row_text(inp)))
