"""The Python API: run a profile headless from code, or start one and steer it.

    results = stressdeck.run("profiles/demo-mix.toml", base_url=url, users=10, duration="5s")
    results = await stressdeck.run_async(profile_dict, rate=200, model="open", requests=1000)
    with stressdeck.start(profile, users=5, duration="1m") as live:
        live.set_users(20)
        results = live.wait()

Overrides are the CLI's options with underscores (``base_url``, ``users``, ``rate``,
``connections``, ``model``, ``duration``, ``requests``, ``preset``, ``max_duration``, ``processes``,
``metrics_url``, ``metric``, ``i_know``, ``save``, ``force``, ``keep_secrets``, ``json``,
``serve_metrics``) and are checked as the CLI checks them: bad input raises ``InputError``
whose message is the CLI's one line.

Names are imported on first use, so that the pytest plugin (``stressdeck.api.pytest_plugin``,
loaded by every pytest run where stressdeck is installed) costs nothing until a test runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stressdeck.api.results import RunResults, ThresholdsFailed
    from stressdeck.api.runs import AsyncRun, LiveRun, run, run_async, start, start_async

_NAMES = {
    "AsyncRun": "stressdeck.api.runs",
    "LiveRun": "stressdeck.api.runs",
    "run": "stressdeck.api.runs",
    "run_async": "stressdeck.api.runs",
    "start": "stressdeck.api.runs",
    "start_async": "stressdeck.api.runs",
    "RunResults": "stressdeck.api.results",
    "ThresholdsFailed": "stressdeck.api.results",
}
__all__ = [
    "AsyncRun",
    "LiveRun",
    "RunResults",
    "ThresholdsFailed",
    "run",
    "run_async",
    "start",
    "start_async",
]


def __getattr__(name: str) -> object:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'stressdeck.api' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
