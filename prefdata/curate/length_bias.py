"""Length bias of preference pairs: does the chosen answer win by being longer? And a `balance` step.

Lengths are of the final turn of `chosen` and `rejected`. With d = len(chosen) - len(rejected):

- `chosen_longer_frac`: share of pairs with d > 0 (ties count as not longer, as in `prefdata stats`);
- `correlation`: Pearson correlation between length difference and preference when every pair is
  seen in both orders ((d, 1) and (-d, 0)); it reduces to mean(d) / sqrt(mean(d^2)), 0 without bias;
- `logit_coef`: the coefficient b of P(answer preferred) = sigmoid(b * d / 100), the log-odds gained
  per 100 units of extra length, fitted by maximum likelihood (statsmodels `Logit`, no intercept: the
  order of a pair carries no information), with a 95% Wald interval `logit_ci`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import polars as pl

from prefdata import schema
from prefdata.curate.config import BalanceConfig
from prefdata.curate.text import final_text, pair_id_column

STAGE = "length_balance"
LengthUnit = Literal["chars", "words", "tokens"]
SCALE = 100
Z95 = 1.959963984540054  # the normal distribution's 97.5% quantile: a two-sided 95% interval


def text_lengths(texts: pl.Series, unit: LengthUnit = "chars", tokenizer: str | None = None) -> pl.Series:
    """Length of each text in characters, whitespace-separated words, or tokenizer tokens."""
    texts = texts.fill_null("")
    if unit == "chars":
        return texts.str.len_chars().cast(pl.Int64)
    if unit == "words":
        return texts.str.extract_all(r"\S+").list.len().cast(pl.Int64)
    from prefdata.tokens import token_counts

    return token_counts(texts, tokenizer)


def pair_lengths(frame: pl.DataFrame, unit: LengthUnit = "chars", tokenizer: str | None = None) -> pl.DataFrame:
    texts = frame.select(final_text("chosen").alias("chosen"), final_text("rejected").alias("rejected"))
    return pl.DataFrame({c: text_lengths(texts[c], unit, tokenizer) for c in ("chosen", "rejected")})


def _logit(diff: np.ndarray) -> dict:
    """Fit P(preferred) = sigmoid(b * d / SCALE) on the pairs with d != 0 (ties carry no information)."""
    x = diff[diff != 0] / SCALE
    if x.size < 2:
        return {"logit_coef": None, "logit_ci": None, "logit_p": None, "logit_note": "fewer than 2 untied pairs"}
    if (x > 0).all() or (x < 0).all():
        # the coefficient is infinite, which JSON cannot hold: None, and the note says which way
        side = "longer" if x[0] > 0 else "shorter"
        return {"logit_coef": None, "logit_ci": None, "logit_p": None,
                "logit_note": f"separated: every untied pair prefers the {side} answer (coefficient is infinite)"}
    coef, se = _newton(x)
    half = Z95 * se
    return {"logit_coef": coef, "logit_ci": [coef - half, coef + half],
            "logit_p": math.erfc(abs(coef / se) / math.sqrt(2))}


def _newton(x: np.ndarray, steps: int = 100) -> tuple[float, float]:
    """Maximum likelihood of the one-parameter logit P(y=1) = sigmoid(b x) with every y = 1, and b's
    standard error (the Wald one, as statsmodels' Logit gives): Newton's method on a concave function,
    a few numpy passes instead of importing statsmodels (over a second)."""
    def loglik(b: float) -> float:
        return float(-np.logaddexp(0, -b * x).sum())

    b = 0.0
    for _ in range(steps):
        p = 0.5 * (1 + np.tanh(0.5 * b * x))  # sigmoid without overflow
        step = float((x * (1 - p)).sum()) / float((x * x * p * (1 - p)).sum())
        while loglik(b + step) < loglik(b) and abs(step) > 1e-12:  # damped where a full step overshoots
            step /= 2
        b += step
        if abs(step) < 1e-10 * max(1.0, abs(b)):
            break
    p = 0.5 * (1 + np.tanh(0.5 * b * x))
    return b, 1 / math.sqrt(float((x * x * p * (1 - p)).sum()))


def length_bias_report(frame: pl.DataFrame, unit: LengthUnit = "chars", tokenizer: str | None = None) -> dict:
    """Length-bias figures of a PAIRS table (see the module's docstring for definitions)."""
    return lengths_report(pair_lengths(frame, unit, tokenizer), unit)


def lengths_report(lengths: pl.DataFrame, unit: LengthUnit = "chars") -> dict:
    """The figures from the chosen and rejected lengths alone (streamed curation gathers them chunk by chunk)."""
    diff = (lengths["chosen"] - lengths["rejected"]).to_numpy().astype(np.float64)
    n = diff.size
    report = {"pairs": n, "unit": unit, "logit_scale": SCALE}
    if n == 0:
        return {**report, "chosen_longer_frac": None, "rejected_longer_frac": None, "tie_frac": None,
                "mean_length_diff": None, "correlation": None, "logit_coef": None, "logit_ci": None,
                "logit_p": None}
    rms = math.sqrt(float(np.mean(diff**2)))
    report.update({
        "chosen_longer_frac": round(float(np.mean(diff > 0)), 4),
        "rejected_longer_frac": round(float(np.mean(diff < 0)), 4),
        "tie_frac": round(float(np.mean(diff == 0)), 4),
        "mean_length_diff": round(float(np.mean(diff)), 3),
        "mean_chosen_length": round(float(lengths["chosen"].mean()), 3),
        "mean_rejected_length": round(float(lengths["rejected"].mean()), 3),
        "correlation": round(float(np.mean(diff)) / rms, 4) if rms else 0.0,
    })
    report.update(_logit(diff))
    return report


def balance(frame: pl.DataFrame, config: BalanceConfig | None = None, ctx=None) -> schema.StageResult:
    """Keep the largest subset whose chosen-longer share lies in target ± tolerance, by dropping pairs
    from the over-represented side (chosen longer, or chosen not longer) in a seeded hash order."""
    config = config or BalanceConfig()
    lengths = pair_lengths(frame, config.unit, config.tokenizer)
    longer = (lengths["chosen"] > lengths["rejected"]).to_numpy()
    n, n_longer = len(longer), int(longer.sum())
    low, high = config.target - config.tolerance, config.target + config.tolerance
    if n == 0 or low <= n_longer / n <= high:
        return schema.StageResult(frame, schema.empty(schema.DROPPED))
    if n_longer / n > high:  # drop k longer: (L - k) / (n - k) <= high
        side, k = True, math.ceil((n_longer - high * n) / (1 - high)) if high < 1 else 0
    else:  # drop k not-longer: L / (n - k) >= low
        side, k = False, math.ceil(n - n_longer / low) if low > 0 else 0
    ids = frame["pair_id"] if "pair_id" in frame.columns else pl.Series(np.arange(n)).cast(pl.String)
    order = ids.hash(config.seed).to_numpy()
    candidates = np.flatnonzero(longer == side)
    drop = np.zeros(n, dtype=bool)
    drop[candidates[np.argsort(order[candidates], kind="stable")][:k]] = True
    mask = pl.Series(drop)
    reason = "chosen_longer_overrepresented" if side else "chosen_shorter_overrepresented"
    return schema.StageResult(
        frame.filter(~mask),
        schema.dropped_rows(frame.filter(mask), STAGE, "length_balance", id_column=pair_id_column(frame),
                            detail=f"{reason}: {n_longer}/{n} chosen longer, target {config.target}"
                                   f"±{config.tolerance}"))
