"""Many endpoints (issue 27.4): a tick costs what was sent in it, not the number of endpoints.

20,000 endpoints used to stall every tick of a 4 s run (every endpoint cut, encoded, sent,
merged and summarised each tick, sent to or not); the run never ended. Figures for 1,000 to
100,000 endpoints are in benchmarks/endpoints.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import ServerThread

from stressdeck.core.errors import InputError
from stressdeck.engine import build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.stats import Recorder
from stressdeck.profiles.profile import MAX_ENDPOINTS, parse_profile


def many(url: str, count: int, **load: Any) -> dict[str, Any]:
    return {
        "name": "many",
        "base_url": url,
        "load": load,
        "endpoints": [{"name": f"e{i}", "path": f"/ok?e={i}"} for i in range(count)],
    }


def test_a_cut_holds_only_the_endpoints_that_recorded_something() -> None:
    recorder = Recorder(100_000)
    recorder.record_response(70_001, 200, True, 1000.0, 900.0, 500.0, 10)
    recorder.record_dropped(3)
    delta = recorder.cut(0.0, 1.0, sparse=True)
    assert delta.indexes == (3, 70_001)
    assert [(i, d.requests, d.dropped) for i, d in delta.by_endpoint()] == [
        (3, 0, 1),
        (70_001, 1, 0),
    ]
    assert recorder.cut(1.0, 2.0, sparse=True).endpoints == ()  # an idle tick: nothing
    with pytest.raises(IndexError):
        recorder.record_cancelled(100_000)


@pytest.mark.slow
async def test_20000_endpoints_run_to_their_end_with_exact_counts(target: ServerThread) -> None:
    plan = build_plan(
        parse_profile(many(target.url, 20_000, users=4), "many.toml"), Overrides(duration=2.0)
    )
    handle = await start(plan)
    # Before: not finished after 240 s. Generous: only a hang fails this.
    first = handle.latest
    async with asyncio.timeout(90):
        final = await handle.wait()
    # On time (a worker starved of CPU on a loaded machine may still be named late: what it
    # sent is then unaccounted, never lost).
    assert final.stop_reason.startswith("duration reached")
    assert final.elapsed < 10
    assert final.total.requests > 0
    assert final.total.requests + final.total.cancelled + final.health.unaccounted == target.count
    assert sum(ep.requests for ep in final.endpoints) == final.total.requests
    assert len(final.endpoints) == 20_000
    # An endpoint never sent to keeps its summary from the start: it cost nothing per tick.
    idle = [i for i, ep in enumerate(final.endpoints) if not ep.requests and not ep.cancelled]
    assert idle and all(final.endpoints[i] is first.endpoints[i] for i in idle)


def test_more_endpoints_than_the_cap_is_one_line() -> None:
    document = many("http://127.0.0.1:9", MAX_ENDPOINTS + 1)
    with pytest.raises(InputError) as caught:
        parse_profile(document, "many.toml")
    assert caught.value.line() == (
        "many.toml: endpoints: expected at most 100,000 endpoints, got 100,001 (each costs "
        "start-up time and memory; split the profile)"
    )
