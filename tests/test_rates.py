"""Figures carry their count and a 95% interval: Wilson for rates, checked against the closed form."""

import math

import pytest

from prefdata.rates import FEW, describe, kappa, rate


def wilson(k, n, z=1.959963984540054):
    """The Wilson score interval written out (Wilson 1927), to check statsmodels' result independently."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(7, 8), (0, 5), (5, 5), (40, 96), (1, 1)])
def test_rate_is_wilson(k, n):
    figure = rate(k, n)
    low, high = wilson(k, n)
    assert figure.value == pytest.approx(k / n) and figure.n == n and figure.k == k
    assert (figure.low, figure.high) == (pytest.approx(low), pytest.approx(high))
    assert 0 <= figure.low <= figure.value <= figure.high <= 1
    assert figure.few == (n < FEW)


def test_the_issue_figure_88_percent_of_8_says_how_little_it_rests_on():
    text = describe(rate(7, 8).as_dict(), noun="swapped comparisons")
    assert text == "88% (7 of 8 swapped comparisons; 95% CI 53% to 98%; few)"


def test_nothing_to_measure_is_not_a_number():
    assert rate(0, 0).value is None and rate(0, 0).as_dict()["ci95"] is None
    assert describe(rate(0, 0).as_dict(), noun="gold items") == "n/a (0 gold items)"
    assert kappa(["a"] * 4, ["a"] * 4).value is None  # one label: kappa undefined
    assert not rate(30, 60).few and rate(29, 29).few
