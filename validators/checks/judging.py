"""How the judge did, when the data came with its judgments: parse failures and position consistency."""

from __future__ import annotations

import polars as pl

from prefdata.rates import describe, rate
from prefdata.validators.inputs import Inputs
from prefdata.validators.result import CheckResult

COMPARISON = ("prompt_id", "judge", "a_id", "b_id")


def judge_parse_failures(inp: Inputs) -> CheckResult:
    limit = inp.thresholds.max_parse_failure_rate
    j = inp.judgments
    failed = j.filter(~pl.col("parse_ok").fill_null(False))
    value = failed.height / j.height if j.height else 0.0
    examples = [{"prompt_id": r.get("prompt_id"), "judge": r.get("judge"), "raw": (r.get("raw") or "")[:160],
                 "error": r.get("error")} for r in failed.head(inp.examples).iter_rows(named=True)]
    by_judge = (j.group_by("judge").agg((~pl.col("parse_ok").fill_null(False)).mean().round(4).alias("rate"))
                .sort("judge"))
    share = rate_of(failed.height, j.height)
    return CheckResult("judge_parse_failures", "warning", value <= limit, round(value, 4), f"<= {limit}",
                       f"{failed.height} of {j.height} verdicts could not be read: {describe(share, noun='verdicts')}",
                       figures={"by_judge": dict(by_judge.iter_rows()), "rate": share}, examples=examples)


def judge_position_consistency(inp: Inputs) -> CheckResult:
    """Judgments are stored de-swapped, so one comparison judged in both orders should name the same winner."""
    least = inp.thresholds.min_position_consistency
    both = (inp.judgments.filter(pl.col("parse_ok").fill_null(False))
            .group_by(COMPARISON).agg(pl.col("order").n_unique().alias("orders"),
                                      pl.col("winner").n_unique().alias("winners"))
            .filter(pl.col("orders") == 2))
    if both.height == 0:
        return CheckResult("judge_position_consistency", "warning", True, None, f">= {least}",
                           "skipped: no comparison was judged in both orders (judge.swap: false)", skipped=True)
    consistent = int((both["winners"] == 1).sum())
    value = consistent / both.height
    share = rate_of(consistent, both.height)
    examples = [dict(zip(COMPARISON, r)) for r in
                both.filter(pl.col("winners") > 1).head(inp.examples).select(COMPARISON).iter_rows()]
    return CheckResult("judge_position_consistency", "warning", value >= least, round(value, 4), f">= {least}",
                       f"{consistent} of {both.height} comparisons judged in both orders agree: "
                       f"{describe(share, noun='comparisons')}",
                       figures={"comparisons": both.height, "consistent": consistent, "rate": share}, examples=examples)


def rate_of(k: int, n: int) -> dict:
    """k of n with its Wilson interval and the `few` flag (`prefdata.rates`)."""
    return rate(k, n).as_dict()
