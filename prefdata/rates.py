"""A figure and what it rests on: the value, the number of items behind it, a 95% interval, and a `few` flag.

One structure for the manifest (`as_dict`) and the card (`describe`), so "88%" never travels without
"of 8 (95% CI 53-98%, few)". Rates get Wilson score intervals (statsmodels' `proportion_confint`), which
stay inside [0, 1] and behave at 0% and 100%; Cohen's kappa gets statsmodels' asymptotic interval.

FEW = 30: below 30 items even a Wilson interval is wider than about +-15 points around 50%, too wide to
tell a good judge from a coin; such figures are marked `few` and the card says so.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Hashable, Sequence

FEW = 30
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Figure:
    value: float | None          # None when there is nothing to measure (n = 0, or undefined)
    n: int                       # items the figure rests on
    low: float | None = None     # 95% interval
    high: float | None = None
    k: int | None = None         # for a rate: the items counted in the numerator

    @property
    def few(self) -> bool:
        return self.n < FEW

    def as_dict(self) -> dict[str, Any]:
        interval = None if self.low is None else [round(self.low, 4), round(self.high, 4)]
        out = {"value": None if self.value is None else round(self.value, 4), "n": self.n, "ci95": interval,
               "few": self.few}
        return out if self.k is None else {**out, "k": self.k}


def rate(k: int, n: int) -> Figure:
    """k of n, with its Wilson 95% interval; no items: value None."""
    if n <= 0:
        return Figure(None, 0, k=0)
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    return Figure(k / n, n, float(low), float(high), k=k)


def kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> Figure:
    """Cohen's kappa over the items both raters labelled (None is no label), with its asymptotic 95%
    interval (statsmodels); undefined (value None) when there are no items or one label only."""
    import numpy as np
    from statsmodels.stats.inter_rater import cohens_kappa

    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    labels = sorted({v for pair in pairs for v in pair}, key=str)
    if len(pairs) == 0 or len(labels) < 2:
        return Figure(None, len(pairs))
    index = {label: i for i, label in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)))
    for x, y in pairs:
        table[index[x], index[y]] += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate table gives NaN, handled below
        result = cohens_kappa(table)
    value, spread = float(result.kappa), float(result.std_kappa)
    if math.isnan(value):
        return Figure(None, len(pairs))
    if math.isnan(spread):
        return Figure(value, len(pairs))
    return Figure(value, len(pairs), max(-1.0, value - Z95 * spread), min(1.0, value + Z95 * spread))


def _pct(value: float) -> str:
    return f"{value:.0%}"


def describe(figure: dict | None, percent: bool = True, noun: str = "") -> str:
    """`88% of 8 (95% CI 53-98%, few)` from a figure's dict; `n/a (0 items)` when there is nothing."""
    if not figure or figure.get("value") is None:
        n = (figure or {}).get("n", 0)
        return f"n/a ({n} {noun or 'items'})"
    show = _pct if percent else (lambda v: f"{v:.2f}")
    k = f"{figure['k']} of " if figure.get("k") is not None else ""
    head = f"{show(figure['value'])} ({k}{figure['n']}{' ' + noun if noun else ''}"
    if figure.get("ci95"):
        low, high = figure["ci95"]
        head += f"; 95% CI {show(low)} to {show(high)}"
    return head + ("; few" if figure.get("few") else "") + ")"
