"""A latency SLA, p50/p95/p99 for 1, 10, 50 and 100 users, checked against the demo target.

Each level is one test: a 3 s closed-model run whose thresholds are the SLA row, plus no
errors and every response check passing. A miss fails the test with stressdeck's threshold
table; the whole table is printed at the end of the session.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

PROFILE = Path(__file__).with_name("profile.toml")

# users -> the latency p50, p95 and p99 must stay under. The demo target is one Python
# thread: from 50 users on it queues, and the figures say so.
SLA = {
    1: ("10ms", "50ms", "100ms"),
    10: ("25ms", "75ms", "150ms"),
    50: ("150ms", "400ms", "600ms"),
    100: ("400ms", "800ms", "1200ms"),
}


@pytest.mark.parametrize("users", SLA, ids=lambda users: f"{users}-users")
def test_latency_sla(stressdeck, demo_target, record_property, users: int) -> None:
    p50, p95, p99 = SLA[users]
    profile = tomllib.loads(PROFILE.read_text())
    profile["thresholds"] = [
        f"p50 < {p50}",
        f"p95 < {p95}",
        f"p99 < {p99}",
        "error_rate < 1%",
        "checks > 99%",
    ]
    record_property("sla_users", users)
    record_property("sla", "/".join(SLA[users]))
    # One worker thread: quick to start. processes="auto" puts the load in worker processes.
    results = stressdeck.run(
        profile, base_url=demo_target.url, users=users, duration="3s", processes=1
    )
    results.assert_thresholds()
