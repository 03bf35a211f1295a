"""The load engine: a plain library, no UI imports. ``start(plan)`` returns a RunHandle."""

import os

# numpy's BLAS keeps a pool of threads that spin after each call: they burned about half a
# core of an idle run, stole it from the event loop and made the generator look saturated.
# Our numpy work (percentiles, buckets) is tiny and single-threaded anyway. Set here, where
# the engine (and with it numpy) is first imported, not in the top package: pytest loads
# that in every run of every project where stressdeck is installed (the plugin).
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

# After the settings above: these import numpy.
from stressdeck.engine.plan import Plan, RequestSpec, build_plan  # noqa: E402
from stressdeck.engine.runner import RunHandle, start  # noqa: E402
from stressdeck.engine.snapshot import (  # noqa: E402
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
