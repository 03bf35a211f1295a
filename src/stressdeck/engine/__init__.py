"""The load engine: a plain library, no UI imports. ``start(plan)`` returns a RunHandle."""

from stressdeck.engine.plan import Plan, RequestSpec, build_plan
from stressdeck.engine.runner import RunHandle, start
from stressdeck.engine.snapshot import (
    ControlEvent,
    EndpointSummary,
    Percentiles,
    Snapshot,
    TimelinePoint,
)

__all__ = [
    "ControlEvent",
    "EndpointSummary",
    "Percentiles",
    "Plan",
    "RequestSpec",
    "RunHandle",
    "Snapshot",
    "TimelinePoint",
    "build_plan",
    "start",
]
