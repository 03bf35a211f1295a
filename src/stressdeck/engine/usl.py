"""The Universal Scalability Law, fitted to throughput against users (closed model).

    X(N) = lambda * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))

``sigma`` is contention (queueing on a shared resource: throughput levels off), ``kappa``
coherency (crosstalk: throughput falls past a peak at ``sqrt((1 - sigma) / kappa)`` users).
Least squares without scipy: for each (sigma, kappa) the best lambda has a closed form, so a
coarse grid over both, then a finer one around the best, finds the minimum of a 3-parameter
fit exactly enough for a report, in a few milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

GOOD_R2 = 0.9  # below it, or with fewer points than MIN_POINTS, the fit is called poor
MIN_POINTS = 4


@dataclass(frozen=True)
class UslFit:
    """Fitted coefficients and how well they describe the measured points."""

    lam: float  # throughput of one user (req/s)
    sigma: float
    kappa: float
    r2: float  # coefficient of determination of throughput
    points: int

    @property
    def good(self) -> bool:
        return self.points >= MIN_POINTS and self.r2 >= GOOD_R2

    @property
    def peak_users(self) -> float | None:
        """Users where throughput peaks; None when it never falls (no coherency cost)."""
        if self.kappa <= 0:
            return None
        return math.sqrt(max(1 - self.sigma, 0.0) / self.kappa)

    def throughput(self, users: float) -> float:
        # The same shape as _shape, on one number: the console draws it before numpy is loaded.
        shape = users / (1 + self.sigma * (users - 1) + self.kappa * users * (users - 1))
        return shape * self.lam

    def to_dict(self) -> dict[str, Any]:
        peak = self.peak_users
        return {
            "lambda": round(self.lam, 3),
            "sigma": round(self.sigma, 6),
            "kappa": round(self.kappa, 8),
            "peak_users": round(peak, 1) if peak is not None else None,
            "r2": round(self.r2, 4),
            "quality": "good" if self.good else "poor",
        }

    def text(self) -> str:
        peak = self.peak_users
        where = (
            f"throughput peaks at {peak:.0f} users ({self.throughput(peak):.0f} req/s)"
            if peak is not None
            else "throughput never falls in this fit (no coherency cost)"
        )
        quality = (
            f"fit good (R² {self.r2:.3f}, {self.points} steps)"
            if self.good
            else f"fit poor (R² {self.r2:.3f}, {self.points} steps): do not read much into it"
        )
        return (
            f"Universal Scalability Law: contention σ {self.sigma:.4f}, coherency κ "
            f"{self.kappa:.6f}, {self.lam:.1f} req/s per user alone; {where}; {quality}"
        )


def _shape(users: np.ndarray, sigma: float, kappa: float) -> np.ndarray:
    return users / (1 + sigma * (users - 1) + kappa * users * (users - 1))


def _fit_at(
    users: np.ndarray, throughput: np.ndarray, sigma: float, kappa: float
) -> tuple[float, float]:
    """The best lambda for this sigma and kappa, and the squared error it leaves."""
    import numpy as np

    shape = _shape(users, sigma, kappa)
    lam = float(np.dot(throughput, shape) / np.dot(shape, shape))
    residual = throughput - lam * shape
    return lam, float(np.dot(residual, residual))


def fit_usl(users: Sequence[float], throughput: Sequence[float]) -> UslFit | None:
    """Fit the law to (users, throughput) points; None with fewer than 3 distinct user counts."""
    import numpy as np  # here, not at the top: the models above are read on the first screen

    n = np.asarray(users, dtype=float)
    x = np.asarray(throughput, dtype=float)
    if len(set(users)) < 3 or not np.all(n > 0):
        return None
    sigmas = np.concatenate(([0.0], np.logspace(-4, 0, 41)))
    kappas = np.concatenate(([0.0], np.logspace(-7, -0.5, 53)))
    best = (math.inf, 0.0, 0.0, 0.0)
    for sigma in sigmas:
        for kappa in kappas:
            lam, error = _fit_at(n, x, sigma, kappa)
            if error < best[0]:
                best = (error, lam, sigma, kappa)
    # Refine around the best grid point, twice, each time a tenth of the span.
    for _ in range(2):
        _, _, sigma0, kappa0 = best
        for sigma in np.linspace(sigma0 * 0.5, sigma0 * 1.5 + 1e-5, 21):
            for kappa in np.linspace(kappa0 * 0.5, kappa0 * 1.5 + 1e-8, 21):
                lam, error = _fit_at(n, x, min(sigma, 1.0), kappa)
                if error < best[0]:
                    best = (error, lam, min(sigma, 1.0), kappa)
    error, lam, sigma, kappa = best
    spread = float(np.sum((x - x.mean()) ** 2))
    r2 = 1 - error / spread if spread > 0 else 0.0
    return UslFit(lam, float(sigma), float(kappa), r2, len(n))
