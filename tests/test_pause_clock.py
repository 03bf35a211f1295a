"""Pause stops the run's clock: paused time is not run time (duration, offsets, RPS), the
snapshot says how long the run has been paused, and paused users read 0. Real runs against
an aiohttp server on 127.0.0.1; the server's own count shows nothing is sent while paused."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import ServerThread
from test_engine import make_plan
from waiting import eventually

from stressdeck.engine import start
from stressdeck.engine.snapshot import PAUSED, RUNNING
from stressdeck.sessions.replay import steer

PAUSE = 1.5  # seconds paused, well over a tick (0.25 s) on a loaded machine


@pytest.mark.slow
async def test_paused_time_does_not_count_toward_the_duration(target: ServerThread) -> None:
    plan = make_plan(
        target.url, [{"name": "ok", "path": "/ok", "think": "10ms"}], users=2, duration="2s"
    )
    began = time.monotonic()
    handle = await start(plan)
    await eventually(lambda: handle.latest.total.requests > 0, what="requests counted")
    handle.pause()
    paused_at = time.monotonic()
    # Two ticks into the pause (one for the workers to report, one for the fold), nothing is
    # in flight and every request the server received is counted.
    await eventually(
        lambda: (
            handle.latest.state == PAUSED
            and handle.latest.paused_for >= 2 * plan.tick
            and handle.latest.in_flight == 0
            and handle.latest.total.requests == target.count
        ),
        what="the requests in flight at the pause have landed and been counted",
    )
    sent_at_pause = target.count
    run_time_at_pause = handle.elapsed()
    # The observation: the pause held until the snapshot says PAUSE s, the server meanwhile.
    await eventually(
        lambda: handle.latest.paused_for >= PAUSE, timeout=PAUSE + 5, what=f"{PAUSE} s paused"
    )
    paused = handle.latest
    assert paused.active_users == 0
    assert paused.paused_for <= time.monotonic() - paused_at
    assert paused.paused_seconds == paused.paused_for
    assert paused.elapsed <= run_time_at_pause + 0.01  # the clock stood still
    assert target.count == sent_at_pause  # the server got nothing while paused
    handle.resume()
    pause_lasted = time.monotonic() - paused_at
    await eventually(lambda: handle.latest.state == RUNNING, what="running again")
    final = await handle.wait()
    wall = time.monotonic() - began
    assert final.stop_reason == "duration reached"
    assert 2.0 <= final.elapsed < 2.0 + 0.5  # run time: the duration, not the pause
    assert wall >= 2.0 + pause_lasted
    pause, resume = final.control_log
    assert resume.value is not None and resume.value == pytest.approx(pause_lasted, abs=0.01)
    assert final.paused_for == 0.0 and final.paused_seconds == pytest.approx(resume.value, abs=0.01)
    # What we counted is what it received: answered, or on the wire when the run stopped.
    counted = final.total.requests + final.total.cancelled
    await eventually(lambda: target.count >= counted, timeout=2.0, what="the server read it all")
    assert target.count == counted
    assert final.timeline[-1].t <= final.elapsed + 0.01  # seconds on the run's clock
    assert (pause.command, resume.command) == ("pause", "resume")
    assert resume.offset - pause.offset < 0.05  # the pause took no run time


@pytest.mark.slow
async def test_a_replay_pauses_as_long_as_the_original(target: ServerThread) -> None:
    """A replayed control log holds the pause for as long as the original did."""
    plan = make_plan(
        target.url, [{"name": "ok", "path": "/ok", "think": "10ms"}], users=2, duration="1.5s"
    )
    original = await start(plan)
    await eventually(lambda: original.latest.total.requests > 0, what="requests counted")
    original.pause()
    await asyncio.sleep(1.0)  # the subject: a pause of a second, which the replay must hold
    original.resume()
    first = await original.wait()
    held = first.control_log[1].value
    assert held is not None and held >= 1.0
    began = time.monotonic()
    replayed = await start(plan)
    await steer(replayed, first.control_log)
    final = await replayed.wait()
    assert time.monotonic() - began >= 1.5 + held - 0.05
    assert [e.command for e in final.control_log] == ["pause", "resume"]
    assert final.control_log[1].value is not None and final.control_log[1].value >= held - 0.05
    assert final.elapsed < 1.5 + 0.5
