"""Agreement between judges: raw agreement, Cohen's kappa, Fleiss' kappa, Krippendorff's alpha (nominal).

Labels are any hashable values; `None` (and NaN) means "no label" and is left out pairwise.
Each function returns NaN when the statistic is undefined (no items, or no variation).
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import combinations
from typing import Hashable, Sequence

import numpy as np

TIE = "tie"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _paired(a: Sequence, b: Sequence) -> list[tuple]:
    if len(a) != len(b):
        raise ValueError(f"label sequences differ in length ({len(a)} vs {len(b)})")
    return [(x, y) for x, y in zip(a, b) if not _missing(x) and not _missing(y)]


def raw_agreement(a: Sequence[Hashable], b: Sequence[Hashable], ignore_ties: bool = False) -> float:
    """Share of items both raters labelled on which they agree; with `ignore_ties`, items that either
    rater called a tie are left out."""
    pairs = _paired(a, b)
    if ignore_ties:
        pairs = [(x, y) for x, y in pairs if x != TIE and y != TIE]
    return sum(x == y for x, y in pairs) / len(pairs) if pairs else float("nan")


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa: observed agreement corrected for the agreement the raters' marginals predict."""
    pairs = _paired(a, b)
    if not pairs:
        return float("nan")
    n = len(pairs)
    observed = sum(x == y for x, y in pairs) / n
    left, right = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    expected = sum(left[c] * right[c] for c in left) / (n * n)
    return float("nan") if expected == 1 else (observed - expected) / (1 - expected)


def fleiss_kappa(table) -> float:
    """Fleiss' kappa from an items x categories table of counts (each row: how many raters chose each
    category for that item; every row must sum to the same number of raters)."""
    counts = np.asarray(table, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0:
        return float("nan")
    raters = counts.sum(axis=1)
    if not np.allclose(raters, raters[0]) or raters[0] < 2:
        raise ValueError("every item needs the same number of raters (at least two)")
    n, items = raters[0], counts.shape[0]
    p_item = ((counts * counts).sum(axis=1) - n) / (n * (n - 1))
    p_cat = counts.sum(axis=0) / (items * n)
    expected = float((p_cat * p_cat).sum())
    return float("nan") if expected == 1 else (float(p_item.mean()) - expected) / (1 - expected)


def krippendorff_alpha(data) -> float:
    """Krippendorff's alpha for nominal data. `data` is raters x items; None or NaN marks a missing label.
    Items labelled by fewer than two raters are not pairable and are left out."""
    rows = [list(r) for r in data]
    if not rows:
        return float("nan")
    coincidence: Counter = Counter()
    for item in zip(*rows):
        values = [v for v in item if not _missing(v)]
        m = len(values)
        if m < 2:
            continue
        for x, y in combinations(values, 2):  # ordered pairs (x, y) and (y, x), each weighted 1/(m-1)
            coincidence[(x, y)] += 1 / (m - 1)
            coincidence[(y, x)] += 1 / (m - 1)
    total = sum(coincidence.values())
    if total == 0:
        return float("nan")
    marginals: Counter = Counter()
    for (x, _), weight in coincidence.items():
        marginals[x] += weight
    observed = sum(w for (x, y), w in coincidence.items() if x != y) / total
    expected = (total * total - sum(v * v for v in marginals.values())) / (total * (total - 1))
    return float("nan") if expected == 0 else 1 - observed / expected


def agreement_matrix(labels: dict[str, Sequence[Hashable]]) -> dict[str, dict[str, dict]]:
    """Judge-by-judge agreement over the items both judged (labels[judge][item]): Cohen's kappa with its
    asymptotic 95% interval and raw agreement with its Wilson interval (`prefdata.rates` figures), and the
    item count. Pairs of different judges only: a judge's agreement with itself is not defined here (its
    agreement across orders is its position consistency), so the diagonal is absent, for every judge alike."""
    from prefdata.rates import kappa, rate

    names = sorted(labels)
    out: dict[str, dict[str, dict]] = {a: {} for a in names}
    for a, b in combinations(names, 2):
        pairs = _paired(labels[a], labels[b])
        cell = {"kappa": kappa([x for x, _ in pairs], [y for _, y in pairs]).as_dict(),
                "raw": rate(sum(x == y for x, y in pairs), len(pairs)).as_dict(), "items": len(pairs)}
        out[a][b] = out[b][a] = cell
    return out
