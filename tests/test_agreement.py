"""Agreement statistics against independent implementations: scikit-learn, statsmodels, krippendorff."""

import math
import random

import numpy as np
import pytest

from prefdata.judge.agreement import (agreement_matrix, cohen_kappa, fleiss_kappa, krippendorff_alpha,
                                      raw_agreement)

LABELS = ["a", "b", "tie"]


def noisy_raters(n_items=200, n_raters=3, noise=0.3, seed=7, missing=0.0):
    rng = random.Random(seed)
    truth = [rng.choice(LABELS) for _ in range(n_items)]
    raters = []
    for _ in range(n_raters):
        labels = [rng.choice(LABELS) if rng.random() < noise else t for t in truth]
        raters.append([None if rng.random() < missing else x for x in labels])
    return raters


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cohen_kappa_matches_scikit_learn(seed):
    from sklearn.metrics import cohen_kappa_score

    a, b = noisy_raters(seed=seed, n_raters=2)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_raw_agreement_and_ties():
    a = ["a", "b", "tie", "a", None]
    b = ["a", "a", "tie", "a", "b"]
    assert raw_agreement(a, b) == pytest.approx(3 / 4)
    assert raw_agreement(a, b, ignore_ties=True) == pytest.approx(2 / 3)
    assert math.isnan(raw_agreement([None], ["a"]))


@pytest.mark.parametrize("seed", [4, 5])
def test_fleiss_kappa_matches_statsmodels(seed):
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa as sm_fleiss

    raters = noisy_raters(seed=seed, n_raters=4)
    codes = np.array([[LABELS.index(x) for x in r] for r in raters]).T  # items x raters
    table, _ = aggregate_raters(codes)
    assert fleiss_kappa(table) == pytest.approx(sm_fleiss(table, method="fleiss"), abs=1e-12)


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_krippendorff_alpha_matches_the_krippendorff_package(missing):
    import krippendorff

    raters = noisy_raters(seed=11, n_raters=3, missing=missing)
    codes = np.array([[np.nan if x is None else LABELS.index(x) for x in r] for r in raters], dtype=float)
    expected = krippendorff.alpha(reliability_data=codes, level_of_measurement="nominal")
    assert krippendorff_alpha(raters) == pytest.approx(expected, abs=1e-9)


def test_perfect_and_chance_agreement():
    same = ["a", "b", "tie", "a", "b"]
    assert cohen_kappa(same, same) == pytest.approx(1.0)
    assert krippendorff_alpha([same, same, same]) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa(["a"] * 5, ["a"] * 5))  # no variation: undefined


def test_agreement_matrix_is_symmetric_without_a_diagonal_and_carries_counts_and_intervals():
    a, b, c = noisy_raters(seed=9, n_raters=3, missing=0.1)
    matrix = agreement_matrix({"j1": a, "j2": b, "j3": c})
    assert matrix["j1"]["j2"] == matrix["j2"]["j1"]
    assert all(name not in matrix[name] for name in matrix)  # one definition for every judge: none
    cell = matrix["j1"]["j3"]
    both = sum(x is not None and y is not None for x, y in zip(a, c))
    assert cell["items"] == cell["kappa"]["n"] == cell["raw"]["n"] == both
    assert cell["kappa"]["value"] == pytest.approx(cohen_kappa(a, c), abs=1e-4)
    assert cell["raw"]["value"] == pytest.approx(raw_agreement(a, c), abs=1e-4)
    low, high = cell["kappa"]["ci95"]
    assert 0 < low < cell["kappa"]["value"] < high < 1 and not cell["kappa"]["few"]


def test_one_judge_has_no_agreement_matrix_entries():
    assert agreement_matrix({"only": ["a", "b", "tie"]}) == {"only": {}}
