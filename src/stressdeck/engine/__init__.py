"""The load engine: a plain library, no UI imports. ``start(plan)`` returns a RunHandle."""

import importlib
import os
from typing import TYPE_CHECKING, Any

# numpy's BLAS keeps a pool of threads that spin after each call: they burned about half a
# core of an idle run, stole it from the event loop and made the generator look saturated.
# Our numpy work (percentiles, buckets) is tiny and single-threaded anyway. Set here, where
# the engine (and with it numpy) is first imported, not in the top package: pytest loads
# that in every run of every project where stressdeck is installed (the plugin).
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

# The package's names are imported on first use (numpy with them, after the settings
# above): a module that only needs the plan (the console's first screen, building it from
# a profile) does not load the runner, the workers and their HTTP clients.
_NAMES = {
    **dict.fromkeys(("Plan", "RequestSpec", "build_plan"), "stressdeck.engine.plan"),
    **dict.fromkeys(("RunHandle", "start"), "stressdeck.engine.runner"),
    **dict.fromkeys(
        ("ControlEvent", "EndpointSummary", "Percentiles", "Snapshot", "TimelinePoint"),
        "stressdeck.engine.snapshot",
    ),
}

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'stressdeck.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
