"""A failing threshold's message names the load, the endpoint behind a failing total, and why
a threshold had no data: real runs against real servers (and a port nobody listens on)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from conftest import ServerThread

from stressdeck.api import ThresholdsFailed, run


def test_a_dead_target_says_why_there_is_no_data(refused_url: str) -> None:
    results = run(
        {
            "name": "dead",
            "base_url": refused_url,
            "load": {"model": "closed", "users": 1, "duration": "0.3s"},
            "endpoints": [{"name": "home", "path": "/"}],
            "thresholds": ["p95 < 100ms"],
        }
    )
    with pytest.raises(ThresholdsFailed) as info:
        results.assert_thresholds()
    message = str(info.value)
    n = results.total.requests
    assert n > 0 and results.total.errors == n
    assert (
        f"p95 < 100ms (total): no data: every one of {n:,} requests failed "
        f"(connect: Connection refused ×{n:,})"
    ) in message
    assert f"load: 1 users, {results.total.rps:.1f} rps, {n:,} requests in" in message


def test_a_failing_total_names_its_worst_endpoint_and_the_load(target: ServerThread) -> None:
    results = run(
        {
            "name": "mix",
            "base_url": target.url,
            "load": {"model": "closed", "users": 2, "requests": 40},
            "endpoints": [
                {"name": "fast", "path": "/ok"},
                {"name": "sluggish", "path": "/slow?ms=30"},
            ],
            "thresholds": ["p99 < 20ms"],
        }
    )
    with pytest.raises(ThresholdsFailed) as info:
        results.assert_thresholds()
    message = str(info.value)
    sluggish = results.endpoint("sluggish").latency_ms.p99
    assert f"p99 < 20ms (total): worst endpoint sluggish at {sluggish:.2f} ms" in message
    assert re.search(r"load: 2 users, [\d.]+ rps, 40 requests in [\d.]+ s", message), message
    assert target.count == 40
