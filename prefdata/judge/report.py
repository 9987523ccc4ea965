"""Judge figures for the manifest and the card: parse failures, position consistency, gold accuracy,
and the judge-by-judge agreement matrix."""

from __future__ import annotations

import polars as pl

from prefdata.judge.agreement import agreement_matrix
from prefdata.judge.panel import KEYS, resolve
from prefdata.spec import GoldSpec


def _rate(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Float64).mean().round(4)


def judge_report(judgments: pl.DataFrame, inconsistent: str = "tie", gold: GoldSpec | None = None) -> dict:
    """Figures per judge, and which judges the gold check removes from the panel."""
    resolved = resolve(judgments, inconsistent)
    per_row = judgments.group_by("judge", maintain_order=True).agg(
        pl.len().alias("verdicts"),
        _rate(~pl.col("parse_ok")).alias("parse_failure_rate"),
        (pl.col("attempts") > 1).sum().alias("re_asked"),
    )
    per_comparison = resolved.group_by("judge", maintain_order=True).agg(
        _rate(pl.col("consistent").drop_nulls()).alias("position_consistency"),
        pl.col("consistent").drop_nulls().len().alias("swapped_comparisons"),
        _rate((pl.col("verdict") == "a").fill_null(False).filter(pl.col("gold"))).alias("gold_accuracy"),
        pl.col("gold").sum().alias("gold_items"),
    )
    figures = {row.pop("judge"): row for row in per_row.join(per_comparison, on="judge").iter_rows(named=True)}
    dropped = []
    for name, row in figures.items():
        low = gold is not None and row["gold_items"] and (row["gold_accuracy"] or 0) < gold.min_accuracy
        row["flagged"] = bool(low)
        if low and gold.action == "drop":
            dropped.append(name)
    regular = resolved.filter(~pl.col("gold"))
    wide = regular.pivot(on="judge", index=KEYS, values="verdict") if regular.height else pl.DataFrame()
    labels = {name: wide[name].to_list() for name in figures if name in wide.columns}
    return {"judges": figures, "agreement": agreement_matrix(labels), "dropped_judges": dropped}
