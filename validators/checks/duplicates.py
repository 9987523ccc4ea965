"""Repeated rows: exact (curation's dedupe keys) and near (curation's MinHash clusters)."""

from __future__ import annotations

import polars as pl

from prefdata.curate.dedupe import _key as dedupe_key
from validators.inputs import Inputs, dropped_examples, example_rows, joined_text
from validators.result import CheckResult

UNPAIRED_KEY = ("prompt", "completion")


def exact_duplicates(inp: Inputs) -> CheckResult:
    limit = inp.thresholds.max_exact_duplicate_rate
    if inp.kind == "pairwise":
        repeats = inp.dedupe.dropped.filter(pl.col("reason") == "exact_duplicate")
        count, examples = repeats.height, dropped_examples(repeats, inp.examples)
    else:  # the same normalised key curation uses, over the columns this kind has
        parts = [dedupe_key(c) for c in inp.conversations]
        if "label" in inp.frame.columns:
            parts.append(pl.col("label").cast(pl.String))
        repeat = ~pl.concat_str(parts, separator="\x1d").is_first_distinct()
        count = int(inp.frame.select(repeat.sum()).item())
        examples = example_rows(inp.frame, repeat, inp.examples)
    rate = count / inp.rows if inp.rows else 0.0
    return CheckResult("exact_duplicates", "warning", rate <= limit, round(rate, 4), f"<= {limit}",
                       f"{count} rows repeat an earlier row (normalised text)", figures={"rows": count},
                       examples=examples)


def near_duplicate_rate(texts: pl.Series, threshold: float) -> tuple[float, pl.Series]:
    """Share of rows that fall in a cluster with an earlier row, and a mask of those rows."""
    from prefdata.curate.near_dedupe import near_duplicate_clusters

    clusters = near_duplicate_clusters(texts, threshold=threshold)
    later = ~clusters.is_first_distinct()
    return (float(later.mean()) if len(texts) else 0.0), later


def row_text(inp: Inputs) -> pl.Expr:
    return pl.concat_str([joined_text(c) for c in inp.conversations], separator="\n\n", ignore_nulls=True)


def near_duplicates(inp: Inputs) -> CheckResult:
    limit = inp.thresholds.max_near_duplicate_rate
    texts = inp.frame.select(row_text(inp).alias("text"))["text"]
    rate, later = near_duplicate_rate(texts, inp.thresholds.near_duplicate_threshold)
    framed = inp.frame.with_columns(later.alias("_later"))
    return CheckResult("near_duplicates", "warning", rate <= limit, round(rate, 4), f"<= {limit}",
                       f"{int(later.sum())} rows near-duplicate an earlier row (word 5-gram Jaccard >= "
                       f"{inp.thresholds.near_duplicate_threshold})",
                       examples=example_rows(framed, pl.col("_later"), inp.examples, text=row_text(inp)))
