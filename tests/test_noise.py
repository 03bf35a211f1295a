"""The noise maths of compare, against values computed by hand or from published tables."""

from __future__ import annotations

import math

import pytest

from stressdeck.sessions.noise import (
    Z_DECIDE,
    Interval,
    pooled_t_noise,
    proportion_noise,
    quantile_ranks,
    spread_half_width,
    t975,
    t999,
    wilson,
)


def test_t_quantiles_from_the_table() -> None:
    assert t975(1) == 12.706 and t975(2) == 4.303 and t975(30) == 2.042
    assert t975(500) == pytest.approx(1.96, abs=1e-3)
    with pytest.raises(ValueError):
        t975(0)


def _t_upper_tail(t: float, degrees: int, steps: int = 200_000) -> float:
    """P(T > t) for Student's t, by the midpoint rule over u = t / x in (0, 1]."""
    v = degrees
    scale = math.gamma((v + 1) / 2) / (math.sqrt(v * math.pi) * math.gamma(v / 2))
    total = 0.0
    for i in range(steps):
        u = (i + 0.5) / steps
        x = t / u
        total += scale * (1 + x * x / v) ** (-(v + 1) / 2) * t / (u * u)
    return total / steps


@pytest.mark.parametrize("degrees", [1, 2, 4, 10, 30])
def test_the_decision_quantile_leaves_one_in_a_thousand_above_it(degrees: int) -> None:
    assert _t_upper_tail(t999(degrees), degrees) == pytest.approx(0.001, abs=2e-6)


def test_the_decision_quantile_beyond_the_table_is_the_normals() -> None:
    assert t999(4) == 7.173 and t999(31) == Z_DECIDE
    assert 0.5 * math.erfc(Z_DECIDE / math.sqrt(2)) == pytest.approx(0.001, abs=1e-7)
    with pytest.raises(ValueError):
        t999(0)


def test_spread_of_one_side() -> None:
    # logs 0, 0.1, 0.2: sd 0.1, t(2) = 4.303 -> 4.303 * 0.1 / sqrt(3)
    assert spread_half_width([0.0, 0.1, 0.2]) == pytest.approx(4.303 * 0.1 / math.sqrt(3))
    assert spread_half_width([1.0]) is None
    assert spread_half_width([2.0, 2.0, 2.0]) == 0.0


def test_pooled_two_sample_t() -> None:
    a, b = [0.0, 0.1, 0.2], [1.0, 1.2, 1.4]
    # variances 0.01 and 0.04, pooled 0.025, t(4) = 2.776
    expected = 2.776 * math.sqrt(0.025 * (1 / 3 + 1 / 3))
    assert pooled_t_noise(a, b) == pytest.approx(expected)
    assert pooled_t_noise([1.0], b) is None


def test_wilson_interval() -> None:
    # 0 of 100: the upper end is z² / (n + z²) = 3.84 / 103.84
    none = wilson(0, 100)
    assert none.value == 0.0 and none.low == 0.0
    assert none.high == pytest.approx(1.959964**2 / (100 + 1.959964**2))
    # 20 of 1,000: about [1.30 %, 3.07 %]
    some = wilson(20, 1000)
    assert (round(some.low, 4), round(some.high, 4)) == (0.013, 0.0307)
    assert wilson(0, 0) == Interval.exact(0.0)


def test_two_proportions() -> None:
    # 20 and 30 errors of 1,000 each: pooled 2.5 %, 1.96 sqrt(0.025 * 0.975 * 2 / 1000)
    expected = 1.959964 * math.sqrt(0.025 * 0.975 * 2 / 1000)
    assert proportion_noise(20, 1000, 30, 1000) == pytest.approx(expected)
    assert proportion_noise(0, 0, 1, 10) == math.inf


def test_quantile_ranks() -> None:
    # p95 of 10,000 samples: rank 9,500 ± 1.96 sqrt(475) = ± 42.7
    low, high = quantile_ranks(10_000, 0.95)
    assert low == pytest.approx((9500 - 1.959964 * math.sqrt(475)) / 100)
    assert high == pytest.approx((9500 + 1.959964 * math.sqrt(475)) / 100)
    assert quantile_ranks(10, 0.99)[1] == 100.0  # clamped to the sample


def test_relative_interval() -> None:
    interval = Interval.relative(10.0, math.log(1.25))
    assert (interval.low, interval.high) == pytest.approx((8.0, 12.5))
    assert interval.log_half_width == pytest.approx(math.log(1.25))
