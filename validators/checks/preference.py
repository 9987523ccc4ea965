"""Is the preference signal usable: size, length bias, margins, KTO label balance."""

from __future__ import annotations

import polars as pl

from prefdata.rates import describe, rate
from prefdata.validators.inputs import Inputs, example_rows
from prefdata.validators.result import CheckResult, skipped


NOUNS = {"pairwise": "pairs", "unpaired": "examples", "prompts": "prompts"}


def rows(inp: Inputs) -> CheckResult:
    """An error below `required_rows` (1): a build that kept nothing must not pass, whatever else holds."""
    least = inp.thresholds.required_rows
    short = "" if inp.rows >= least else f"; at least {least} needed"
    return CheckResult("rows", "error", inp.rows >= least, inp.rows, f">= {least}",
                       f"{inp.rows} {NOUNS[inp.kind]}{short}")


def size(inp: Inputs) -> CheckResult:
    least = inp.thresholds.min_pairs
    return CheckResult("size", "warning", inp.rows >= least, inp.rows, f">= {least}", f"{inp.rows} {NOUNS[inp.kind]}")


def length_bias(inp: Inputs) -> CheckResult:
    """Curation's length-bias figures, held against the thresholds: a set where the longer answer
    nearly always wins teaches length, not quality."""
    from prefdata.curate.length_bias import length_bias_report

    t = inp.thresholds
    report = length_bias_report(inp.frame, unit="chars")
    frac, corr = report.get("chosen_longer_frac"), report.get("correlation")
    if frac is None:
        return skipped("length_bias", "warning", "no pairs to measure")
    n = report["pairs"]
    longer = round(frac * n)
    ok = t.min_chosen_longer <= frac <= t.max_chosen_longer and (corr is None or abs(corr) <= t.max_length_correlation)
    return CheckResult("length_bias", "warning", ok, frac,
                       f"{t.min_chosen_longer}..{t.max_chosen_longer}, |correlation| <= {t.max_length_correlation}",
                       f"chosen is the longer answer in {describe(rate(longer, n).as_dict(), noun='pairs')}; "
                       f"correlation {corr}", figures=dict(report))


def margin(inp: Inputs) -> CheckResult:
    t = inp.thresholds
    if "margin" not in inp.frame.columns or inp.frame["margin"].drop_nulls().len() == 0:
        return skipped("margin", "warning", "no scored pairs")
    # Without a minimum from the spec or the CLI, a weak pair is a tie or a reversed one (margin <= 0).
    weak = pl.col("margin") < t.min_margin if t.min_margin is not None else pl.col("margin") <= 0
    scored = inp.frame.filter(pl.col("margin").is_not_null())
    m = pl.col("margin")
    figures = scored.select(
        pl.len().alias("scored"), m.quantile(0.05).alias("p5"), m.median().alias("p50"),
        m.quantile(0.95).alias("p95"), m.mean().round(4).alias("mean"), weak.sum().alias("below_minimum"),
    ).row(0, named=True)
    share = figures["below_minimum"] / figures["scored"]
    minimum = f"< {t.min_margin}" if t.min_margin is not None else "<= 0"
    return CheckResult("margin", "warning", share <= t.max_low_margin_share, round(share, 4),
                       f"<= {t.max_low_margin_share}", f"{figures['below_minimum']} of {figures['scored']} scored "
                       f"pairs have margin {minimum}", figures=figures,
                       examples=example_rows(inp.frame, weak.fill_null(False), inp.examples, margin=pl.col("margin")))


def kto_label_balance(inp: Inputs) -> CheckResult:
    least = inp.thresholds.min_label_share
    if inp.rows == 0:
        return skipped("kto_label_balance", "warning", "no rows")
    desirable = int(inp.frame["label"].sum())
    share = desirable / inp.rows
    minority = min(share, 1 - share)
    return CheckResult("kto_label_balance", "warning", minority >= least, round(share, 4),
                       f"smaller class >= {least}", f"{desirable} desirable, {inp.rows - desirable} undesirable",
                       figures={"desirable": desirable, "undesirable": inp.rows - desirable})
