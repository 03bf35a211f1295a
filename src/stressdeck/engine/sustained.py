"""Sustained thresholds (``p95 < 200ms for 10s``) followed over the per-second timeline.

The runner feeds every second as it closes (``observe``); each threshold with a ``for``
keeps a ``Breach`` per scope (the total, or one endpoint), so the verdict at any tick, the
live abort included, is the one the timeline shows.
"""

from __future__ import annotations

from collections.abc import Iterable

from stressdeck.engine.plan import Plan
from stressdeck.engine.snapshot import EndpointPoint, TimelinePoint
from stressdeck.engine.timeline import ClosedSecond
from stressdeck.profiles.thresholds import Breach, Threshold, ThresholdResult


def second_metrics(point: TimelinePoint | EndpointPoint, measured: int) -> dict[str, float | None]:
    """One second's figures under the threshold names; None where nothing was measured."""
    return {
        "p50": point.p50 if measured else None,
        "p95": point.p95 if measured else None,
        "p99": point.p99 if measured else None,
        "error_rate": point.errors / point.requests if point.requests else None,
        "rps": point.requests / point.span if point.span else None,
        "dropped": float(point.dropped),
    }


IDLE_SECOND: dict[str, float | None] = {
    "p50": None,
    "p95": None,
    "p99": None,
    "error_rate": None,
    "rps": 0.0,
    "dropped": 0.0,
}


class SustainedThresholds:
    """Every sustained threshold of a plan, each with its breach so far."""

    def __init__(self, plan: Plan) -> None:
        self.total: dict[int, Breach] = {
            position: Breach(threshold)
            for position, threshold in enumerate(plan.thresholds)
            if threshold.sustain
        }
        self.endpoints: dict[int, dict[int, Breach]] = {}
        for index, thresholds in enumerate(plan.endpoint_thresholds):
            name = plan.endpoint_names[index]
            breaches = {
                position: Breach(threshold, name)
                for position, threshold in enumerate(thresholds)
                if threshold.sustain
            }
            if breaches:
                self.endpoints[index] = breaches

    def observe(self, seconds: Iterable[ClosedSecond]) -> None:
        for second in seconds:
            if self.total:
                figures = second_metrics(second.total, second.measured)
                end, span = second.total.t, second.total.span
                for breach in self.total.values():
                    breach.observe(end, span, figures[breach.threshold.metric])
            if not self.endpoints:
                continue
            active = {index: (point, measured) for index, point, measured in second.endpoints}
            end, span = second.total.t, second.total.span
            for index, breaches in self.endpoints.items():
                if index in active:
                    point, measured = active[index]
                    figures = second_metrics(point, measured)
                else:
                    # The endpoint did nothing this second: none sent, none dropped. That is
                    # a figure for rps and dropped; its latencies and error rate do not exist.
                    figures = IDLE_SECOND
                for breach in breaches.values():
                    breach.observe(end, span, figures[breach.threshold.metric])

    def result(
        self,
        threshold: Threshold,
        position: int,
        endpoint: int | None,
        value: float | None,
        *,
        final: bool,
    ) -> ThresholdResult:
        """The verdict of the ``position``-th threshold of the total (``endpoint`` None) or
        of an endpoint; ``value`` is the whole run's figure, shown beside it."""
        scope = self.total if endpoint is None else self.endpoints.get(endpoint, {})
        breach = scope.get(position) or Breach(threshold)
        return breach.result(value, final=final)
