"""Judge figures for the manifest and the card: parse failures, position consistency, gold accuracy,
confidence (from token log-probabilities: the mean, and the share of verdicts below LOW_CONFIDENCE; None
where the judge's backend gave none), and the judge-by-judge agreement matrix.

Every rate is a `prefdata.rates` figure: value, the count it rests on (`n`, `k`), a Wilson 95% interval
and `few` (fewer than 30 items), so that no figure is shown without what it rests on.
"""

from __future__ import annotations

import polars as pl

from prefdata.judge.agreement import agreement_matrix
from prefdata.judge.panel import KEYS, resolve, with_probabilities
from prefdata.rates import rate
from prefdata.spec import GoldSpec

LOW_CONFIDENCE = 0.6  # a verdict its judge gave less than this probability is "unsure" in the figures


def _counts(judgments: pl.DataFrame, resolved: pl.DataFrame) -> dict[str, dict]:
    per_row = judgments.group_by("judge", maintain_order=True).agg(
        pl.len().alias("verdicts"),
        (~pl.col("parse_ok")).sum().alias("unparsed"),
        (pl.col("attempts") > 1).sum().alias("re_asked"),
        pl.col("confidence").filter(pl.col("parse_ok")).drop_nans().drop_nulls().alias("confidences"),
    )
    per_comparison = resolved.group_by("judge", maintain_order=True).agg(
        pl.col("consistent").drop_nulls().sum().alias("consistent"),
        pl.col("consistent").drop_nulls().len().alias("swapped"),
        ((pl.col("verdict") == "a").fill_null(False) & pl.col("gold")).sum().alias("gold_right"),
        pl.col("gold").sum().alias("gold_items"),
    )
    return {row.pop("judge"): row for row in per_row.join(per_comparison, on="judge").iter_rows(named=True)}


def _confidence(values: list[float]) -> dict | None:
    """Mean confidence and the share of verdicts below LOW_CONFIDENCE; None when no verdict had one."""
    if not values:
        return None
    low = sum(v < LOW_CONFIDENCE for v in values)
    return {"mean": sum(values) / len(values), "below": LOW_CONFIDENCE, "low": rate(low, len(values)).as_dict()}


def judge_report(judgments: pl.DataFrame, inconsistent: str = "tie", gold: GoldSpec | None = None) -> dict:
    """Figures per judge, and which judges the gold check removes from the panel."""
    judgments = with_probabilities(judgments)
    resolved = resolve(judgments, inconsistent)
    figures, dropped = {}, []
    for name, c in _counts(judgments, resolved).items():
        accuracy = rate(c["gold_right"], c["gold_items"])
        low = gold is not None and accuracy.value is not None and accuracy.value < gold.min_accuracy
        figures[name] = {
            "verdicts": c["verdicts"],
            "re_asked": c["re_asked"],
            "parse_failure_rate": rate(c["unparsed"], c["verdicts"]).as_dict(),
            # pointwise judges show no order: n = 0, value None
            "position_consistency": rate(c["consistent"], c["swapped"]).as_dict(),
            "gold_accuracy": accuracy.as_dict(),
            "flagged": bool(low),
            "confidence": _confidence(c["confidences"]),
        }
        if low and gold.action == "drop":
            dropped.append(name)
    regular = resolved.filter(~pl.col("gold"))
    wide = regular.pivot(on="judge", index=KEYS, values="verdict") if regular.height else pl.DataFrame()
    labels = {name: wide[name].to_list() for name in figures if name in wide.columns}
    return {"judges": figures, "agreement": agreement_matrix(labels), "dropped_judges": dropped}
