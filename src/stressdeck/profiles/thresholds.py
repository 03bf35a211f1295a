"""Pass/fail thresholds such as ``p95 < 200ms`` or ``error_rate < 1%``: parsing and checking.

Values are normalised at parse time: latencies to milliseconds, rates to a fraction.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stressdeck.core.errors import InputError, describe
from stressdeck.core.fields import Reader

LATENCY_METRICS = ("p50", "p90", "p95", "p99", "p999", "max", "mean", "ttfb_p95")
# Shares, written "1%" or 0.01: error_rate, and checks (the share of response checks that passed).
RATE_METRICS = ("error_rate", "checks")
OTHER_METRICS = (*RATE_METRICS, "rps", "dropped")
METRICS = LATENCY_METRICS + OTHER_METRICS

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_EXPRESSION = re.compile(r"^\s*([a-z_0-9]+)\s*(<=|>=|<|>)\s*(\d+(?:\.\d+)?)\s*(ms|s|us|%)?\s*$")
_LATENCY_UNIT_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001}


@dataclass(frozen=True)
class Threshold:
    expr: str
    metric: str
    op: str
    limit: float

    def check(self, value: float | None, final: bool = False) -> bool:
        """While a run goes, nothing measured yet is pending (not a failure, not an abort);
        at its end nothing measured fails: a dead target must never pass."""
        if value is None:
            return not final
        return _OPERATORS[self.op](value, self.limit)


@dataclass(frozen=True)
class ThresholdResult:
    expr: str
    endpoint: str | None
    value: float | None
    ok: bool

    @property
    def no_data(self) -> bool:
        return self.value is None

    @property
    def metric(self) -> str:
        """The metric the expression measures ("p95<200ms" too: spaces are optional)."""
        match = _EXPRESSION.match(self.expr)
        return match.group(1) if match else ""

    def to_dict(self) -> dict[str, Any]:
        return {"expr": self.expr, "endpoint": self.endpoint, "value": self.value, "ok": self.ok}

    @classmethod
    def from_dict(cls, r: Reader, table: Mapping[str, Any], where: str) -> ThresholdResult:
        return cls(
            expr=r.string(table, "expr", where),
            endpoint=r.optional_string(table, "endpoint", where),
            value=r.optional_number(table, "value", where),
            ok=r.boolean(table, "ok", where),
        )


def parse_threshold(expr: str, source: str = "", where: str = "threshold") -> Threshold:
    """Parse one expression; raises InputError naming ``source`` and ``where``."""
    match = _EXPRESSION.match(expr)
    expected = 'an expression like "p95 < 200ms", "error_rate < 1%" or "rps > 100"'
    if not match:
        raise InputError(source, where, f"expected {expected}, got {describe(expr)}")
    metric, op, number, unit = match.groups()
    if metric not in METRICS:
        raise InputError(
            source,
            where,
            f"unknown metric {describe(metric)}; expected one of {', '.join(METRICS)}",
        )
    limit = float(number)
    if metric in LATENCY_METRICS:
        if unit == "%":
            raise InputError(source, where, f"expected a time unit (ms, s, us) for {metric}, got %")
        limit *= _LATENCY_UNIT_MS[unit or "ms"]
    elif metric in RATE_METRICS:
        if unit in _LATENCY_UNIT_MS:
            raise InputError(
                source, where, f"expected a percentage or a fraction for {metric}, got {unit}"
            )
        if unit == "%":
            limit /= 100.0
        if limit > 1:
            raise InputError(
                source, where, f"expected a percentage up to 100% or a fraction <= 1 for {metric}"
            )
    elif unit is not None:
        raise InputError(source, where, f"expected a plain number for {metric}, got unit {unit}")
    return Threshold(expr=" ".join(expr.split()), metric=metric, op=op, limit=limit)


def evaluate(
    threshold: Threshold,
    metrics: Mapping[str, float | None],
    endpoint: str | None = None,
    *,
    final: bool = False,
) -> ThresholdResult:
    """Check one threshold against a flat metric map (see ``runner.threshold_metrics``);
    ``final``: the run is over, so a metric never measured fails."""
    value = metrics.get(threshold.metric)
    return ThresholdResult(threshold.expr, endpoint, value, threshold.check(value, final))
