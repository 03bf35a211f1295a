"""How sure a run's figure is, and how large a change must be to stand out of the noise.

Pure maths, no I/O. The methods, chosen because a session keeps a whole-run HDR histogram per
endpoint and a per-second timeline of the total, and because requests in a run are not
independent (a busy host slows a whole second, not one request):

* **Batch means** (the textbook method for autocorrelated simulation output): a run's seconds
  are the batches. Latency and throughput vary by a factor, not by an amount, so the batches
  are compared on a log scale. The change between two sides is tested with a **pooled
  two-sample t** over their batches (``t(ka+kb-2) * sp * sqrt(1/ka + 1/kb)``): the spread of
  whole seconds holds what slowed or sped up the host (another process, a garbage collection),
  which a per-request formula misses. With several runs on *both* sides the batches are the
  runs, so the spread between runs is what the change is measured against. Deterministic.
* **Order statistics** for the sampling noise of a percentile: the ranks
  ``n q ± z sqrt(n q (1-q))`` of the histogram bound it, whatever the distribution. An
  endpoint has no timeline of its own: its noise is the larger of the total's between-second
  noise (the host slows every endpoint alike) and its own sampling noise.
* **Proportions** (error rates, status codes): a Wilson interval for each side and a pooled
  two-proportion z-test for the change, on the counted requests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Z95 = 1.959964  # two-sided 95 %: the intervals shown
# One-sided 0.1 % (the 0.999 quantile): the noise a change must exceed to be called a
# regression (see compare.py: a comparison of identical runs says regression at most ~1 %).
Z_DECIDE = 3.090232
TINY = 1e-6  # a log needs a positive figure; 1 ns or 1e-6 requests/s stand for zero

# Student t, two-sided 95 % (0.975 quantile), by degrees of freedom; beyond 30 the normal's.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


# The 0.999 quantile (one-sided 0.1 %): the decision's.
_T999 = (
    318.309, 22.327, 10.215, 7.173, 5.893, 5.208, 4.785, 4.501, 4.297, 4.144,
    4.025, 3.930, 3.852, 3.787, 3.733, 3.686, 3.646, 3.610, 3.579, 3.552,
    3.527, 3.505, 3.485, 3.467, 3.450, 3.435, 3.421, 3.408, 3.396, 3.385,
)  # fmt: skip


def t975(degrees: int) -> float:
    """The 0.975 quantile of Student's t with ``degrees`` degrees of freedom (>= 1)."""
    if degrees < 1:
        raise ValueError("a t quantile needs at least one degree of freedom")
    return _T975[degrees - 1] if degrees <= len(_T975) else Z95


def t999(degrees: int) -> float:
    """The 0.999 quantile of Student's t (one-sided 0.1 %), the decision's; beyond 30
    degrees of freedom the normal's."""
    if degrees < 1:
        raise ValueError("a t quantile needs at least one degree of freedom")
    return _T999[degrees - 1] if degrees <= len(_T999) else Z_DECIDE


def log(value: float) -> float:
    return math.log(max(value, TINY))


@dataclass(frozen=True)
class Interval:
    """A figure and its 95 % interval (``low <= value <= high``)."""

    value: float
    low: float
    high: float

    @classmethod
    def exact(cls, value: float) -> Interval:
        return cls(value, value, value)

    @classmethod
    def relative(cls, value: float, log_half_width: float) -> Interval:
        """``value`` divided and multiplied by ``exp(log_half_width)``."""
        factor = math.exp(log_half_width)
        return cls(value, value / factor, value * factor)

    @property
    def log_half_width(self) -> float:
        """The larger distance from the value to an end, on the log scale."""
        if self.value <= 0:
            return 0.0
        return max(log(self.value) - log(self.low), log(self.high) - log(self.value))

    def widened(self, other: Interval) -> Interval:
        return Interval(self.value, min(self.low, other.low), max(self.high, other.high))


def _variance(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def spread_half_width(logs: Sequence[float]) -> float | None:
    """One side's 95 % half-width (log scale) from its batches: ``t(k-1) sd / sqrt(k)``;
    None for fewer than two batches."""
    k = len(logs)
    if k < 2:
        return None
    return t975(k - 1) * math.sqrt(_variance(logs) / k)


def pooled_t_noise(
    a: Sequence[float], b: Sequence[float], quantile: Callable[[int], float] = t975
) -> float | None:
    """The half-width (log scale; 95 %, or as ``quantile`` says) of the difference of two
    sides' means by a pooled two-sample t over their batches; None when a side has fewer
    than two."""
    ka, kb = len(a), len(b)
    if ka < 2 or kb < 2:
        return None
    pooled = ((ka - 1) * _variance(a) + (kb - 1) * _variance(b)) / (ka + kb - 2)
    return quantile(ka + kb - 2) * math.sqrt(pooled * (1 / ka + 1 / kb))


def quantile_ranks(n: int, q: float) -> tuple[float, float]:
    """The percentiles (0-100) bounding the ``q`` quantile of ``n`` samples at 95 %: the
    binomial (normal) interval of its rank, clamped to the sample."""
    spread = Z95 * math.sqrt(n * q * (1 - q))
    low = max(n * q - spread, 1.0) / n
    high = min(n * q + spread, float(n)) / n
    return low * 100, high * 100


def wilson(errors: int, requests: int) -> Interval:
    """The error rate and its Wilson 95 % interval (sound near 0 % and with few requests)."""
    if requests <= 0:
        return Interval.exact(0.0)
    p = errors / requests
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * requests)) / (1 + z2 / requests)
    spread = Z95 * math.sqrt(p * (1 - p) / requests + z2 / (4 * requests**2)) / (1 + z2 / requests)
    return Interval(p, min(p, max(0.0, centre - spread)), max(p, min(1.0, centre + spread)))


def proportion_noise(
    errors_a: int, requests_a: int, errors_b: int, requests_b: int, z: float = Z95
) -> float:
    """The half-width (95 %, or as ``z`` says) of the difference of two proportions under
    "no change" (pooled two-proportion z-test)."""
    if requests_a <= 0 or requests_b <= 0:
        return math.inf
    pooled = (errors_a + errors_b) / (requests_a + requests_b)
    return z * math.sqrt(pooled * (1 - pooled) * (1 / requests_a + 1 / requests_b))
