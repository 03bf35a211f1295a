"""The open model's bound on requests in flight follows a rate raised live, unless the
profile set it; against a real server on 127.0.0.1 that answers in a second."""

from __future__ import annotations

import pytest
from conftest import ServerThread
from test_engine import make_plan
from waiting import eventually

from stressdeck.engine import start


@pytest.mark.parametrize("explicit", [False, True], ids=["derived", "set-by-the-profile"])
async def test_a_raised_rate_raises_the_derived_in_flight_bound(
    target: ServerThread, explicit: bool
) -> None:
    # Lanes to spare (200 connections): only max_in_flight can bind. At 5/s the derived
    # bound is 50; at 100/s with 1 s answers, about 100 are in flight.
    load: dict[str, object] = {"model": "open", "rate": 5, "duration": "3s", "connections": 200}
    if explicit:
        load["max_in_flight"] = 50
    plan = make_plan(target.url, [{"name": "slow", "path": "/slow?ms=1000"}], **load)
    assert plan.load.max_in_flight == 50
    handle = await start(plan)
    await eventually(lambda: handle.latest.elapsed > 0, what="a first tick")
    handle.set_rate(100)
    final = await handle.wait()
    total = final.total
    assert target.count == total.requests + total.cancelled + final.health.unaccounted
    assert total.requests + total.cancelled > 100  # the raised rate was sent
    if explicit:
        assert total.dropped > 0  # the profile's own bound holds (and the count says so)
    else:
        assert total.dropped == 0
