"""The engine against real HTTP servers on 127.0.0.1: counting, error classes, stopping."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from conftest import ServerThread
from waiting import eventually

from stressdeck.engine import Snapshot, build_plan, start
from stressdeck.profiles.profile import parse_profile


def make_plan(base_url: str, endpoints: list[dict[str, Any]], **load: Any) -> Any:
    thresholds = load.pop("thresholds", None)
    extra = {k: load.pop(k) for k in ("abort_on_fail", "abort_grace", "defaults") if k in load}
    max_duration = load.pop("max_duration", 30.0)
    document: dict[str, Any] = {
        "name": "test",
        "base_url": base_url,
        "endpoints": endpoints,
        "load": load,
        **extra,
    }
    if thresholds:
        document["thresholds"] = thresholds
    return build_plan(parse_profile(document, "test.toml"), max_duration=max_duration)


def assert_counted_once(snapshot: Snapshot) -> None:
    for summary in (snapshot.total, *snapshot.endpoints):
        assert summary.requests == sum(summary.status_counts.values()) + sum(
            summary.error_counts.values()
        )
    assert snapshot.total.requests == sum(ep.requests for ep in snapshot.endpoints)


async def test_every_request_is_counted_exactly_once(target: ServerThread) -> None:
    plan = make_plan(
        target.url,
        [
            {"name": "ok", "path": "/ok", "weight": 3},
            {"name": "missing", "path": "/status/404", "expect": [200]},
            {"name": "boom", "path": "/status/500"},
            {"name": "post", "method": "POST", "path": "/ok", "json": {"a": 1}},
        ],
        users=8,
        requests=400,
    )
    final = await (await start(plan)).wait()
    assert final.stop_reason == "requests done"
    assert final.total.requests == 400
    assert target.count == 400  # the server saw exactly what we counted
    assert_counted_once(final)
    by_name = {ep.name: ep for ep in final.endpoints}
    assert by_name["missing"].errors == by_name["missing"].requests > 0
    assert by_name["boom"].status_counts == {500: by_name["boom"].errors}
    assert by_name["ok"].errors == 0 and by_name["ok"].status_counts[200] == by_name["ok"].requests
    assert final.total.errors == by_name["missing"].requests + by_name["boom"].requests
    assert final.total.cancelled == 0 and final.total.latency_ms.count == 400


async def test_refused_connections_are_connect_errors(refused_url: str) -> None:
    plan = make_plan(refused_url, [{"name": "nothing", "path": "/"}], users=2, requests=20)
    final = await (await start(plan)).wait()
    assert final.total.error_counts == {"connect": 20}
    assert final.total.requests == final.total.errors == 20
    assert_counted_once(final)


async def test_timeouts_and_disconnects_have_their_classes(target: ServerThread) -> None:
    plan = make_plan(
        target.url,
        [
            {"name": "slow", "path": "/slow", "query": {"ms": "3000"}, "timeout": "200ms"},
            {"name": "drop", "path": "/drop"},
        ],
        users=4,
        requests=40,
    )
    final = await (await start(plan)).wait()
    by_name = {ep.name: ep for ep in final.endpoints}
    assert by_name["slow"].error_counts == {"timeout": by_name["slow"].requests}
    assert by_name["drop"].error_counts == {"disconnect": by_name["drop"].requests}
    assert final.total.requests == 40
    assert_counted_once(final)


async def test_stop_is_fast_and_cancels_what_is_in_flight(target: ServerThread) -> None:
    plan = make_plan(
        target.url,
        [{"name": "slow", "path": "/slow", "query": {"ms": "5000"}}],
        users=20,
        duration="30s",
    )
    handle = await start(plan)
    await eventually(
        lambda: handle.latest.in_flight == 20 and target.count == 20,
        what="every user has its slow request in flight (engine and server agree)",
    )
    began = time.perf_counter()
    final = await handle.stop()
    took = time.perf_counter() - began
    assert took < 1.0, took
    assert final.state == "stopped" and final.stop_reason == "stopped by user"
    assert final.total.cancelled == 20
    assert final.total.requests == 0 and final.total.errors == 0  # cancelled is neither
    assert [event.command for event in final.control_log] == ["stop"]


async def test_a_signal_while_stopping_for_another_reason_is_still_named_first(
    target: ServerThread,
) -> None:
    """As when a SIGTERM to the whole process group kills the workers and their deaths are
    noticed before the signal: the run was interrupted, and a replay must stop there."""
    plan = make_plan(
        target.url,
        [{"name": "slow", "path": "/slow", "query": {"ms": "5000"}}],
        users=4,
        duration="30s",
    )
    handle = await start(plan)
    await eventually(
        lambda: handle.latest.in_flight == 4, what="every user has its slow request in flight"
    )
    crash = asyncio.create_task(handle.stop("worker 1 crashed: killed"))
    # One turn of the loop runs the task just created up to its first await: stop() marks the
    # run stopping before it awaits anything. That is asyncio's order, not a guess at timing;
    # a poll could miss the short "stopping" and find the run already stopped.
    await asyncio.sleep(0)
    assert handle.state == "stopping"
    user = asyncio.create_task(handle.stop("stopped by user"))  # not a signal: changes nothing
    await asyncio.sleep(0)  # the same: that stop has been asked before the signal's
    final = await handle.stop("interrupted")
    assert final.stop_reason == "interrupted; worker 1 crashed: killed"
    assert (await crash) is final and (await user) is final


async def test_duration_ends_the_run(target: ServerThread) -> None:
    plan = make_plan(target.url, [{"name": "ok", "path": "/ok"}], users=2, duration="1s")
    final = await (await start(plan)).wait()
    assert final.stop_reason == "duration reached"
    assert 1.0 <= final.elapsed < 1.6
    assert final.total.requests > 0 and final.timeline


async def test_snapshots_stream_until_the_end(target: ServerThread) -> None:
    plan = make_plan(target.url, [{"name": "ok", "path": "/ok"}], users=2, duration="1s")
    handle = await start(plan)
    seen = [snapshot async for snapshot in handle.snapshots()]
    assert seen[-1].finished and not any(s.finished for s in seen[:-1])
    assert [s.total.requests for s in seen] == sorted(s.total.requests for s in seen)
    assert len(seen) >= 3  # about four a second


async def test_a_stalled_generator_reports_itself(target: ServerThread) -> None:
    """Self-health: block the worker's event loop and the snapshot says the generator lagged."""
    plan = make_plan(target.url, [{"name": "ok", "path": "/ok"}], users=2, duration="2s")
    handle = await start(plan)  # one process: a ThreadWorker whose loop we can reach
    await eventually(
        lambda: handle.latest.total.requests > 0, what="the worker is sending and reporting"
    )
    handle._workers[0]._loop.call_soon_threadsafe(
        time.sleep, 0.4
    )  # a 400 ms stall, as a busy loop would
    final = await handle.wait()
    health = final.health
    # The ticker is due at most one tick into the stall, so it fires at least (stall - tick) late.
    assert health.peak_loop_lag_ms >= (0.4 - plan.tick) * 1000 - 5, health
    # At least one tick was saturated; a tick's interval, as measured, may come out a hair short.
    assert health.saturated_seconds >= 0.9 * plan.tick, health
    assert health.processes == 1 and health.peak_cpu_percent > 0
    assert final.total.requests > 0


async def test_a_worker_whose_ticker_dies_ends_as_crashed(target: ServerThread) -> None:
    """The channel to the runner breaks on the third tick: the worker must say so and end,
    not go on sending load that nobody counts."""
    from stressdeck.engine.stats import IntervalStats
    from stressdeck.engine.worker import Command, Worker, WorkerFinished

    plan = make_plan(
        target.url, [{"name": "ok", "path": "/ok"}], model="open", rate=100, duration="5s"
    )
    received: list[object] = []
    ticks = 0

    def emit(message: object) -> None:
        nonlocal ticks
        if isinstance(message, IntervalStats):
            ticks += 1
            if ticks == 3:
                raise BrokenPipeError("runner went away")
        received.append(message)

    worker = Worker(plan, 0, 0, 100, None, emit)
    worker.apply(Command("resume"))  # as the runner does once every worker is up
    began = time.monotonic()
    await asyncio.wait_for(worker.run(), timeout=5)
    assert time.monotonic() - began < 2  # three ticks of 0.25 s and a clean stop, not the 5 s run
    last = received[-1]
    assert isinstance(last, WorkerFinished)
    assert (last.reason, last.error) == ("crashed", "BrokenPipeError: runner went away")


@pytest.mark.slow
async def test_a_silent_worker_shows_as_lag_while_it_is_silent(target: ServerThread) -> None:
    """A blocked worker loop reports nothing; the runner must show the silence as it happens."""
    plan = make_plan(target.url, [{"name": "ok", "path": "/ok"}], users=1, duration="3s")
    handle = await start(plan)
    await eventually(
        lambda: handle.latest.total.requests > 0, what="the worker is sending and reporting"
    )
    stall: dict[str, float] = {}  # run time at which the worker's loop was blocked, and freed

    def block() -> None:  # on the worker's loop: nothing there runs meanwhile
        stall["began"] = handle.elapsed()
        time.sleep(1.5)
        stall["ended"] = handle.elapsed()

    handle._workers[0]._loop.call_soon_threadsafe(block)
    await eventually(lambda: "began" in stall, what="the worker's loop is blocked")
    # The first snapshot more than a second into the silence (the stall lasts 1.5 s).
    async with asyncio.timeout(5):
        async for during in handle.snapshots():
            if during.elapsed >= stall["began"] + 1.1:
                break
    await handle.wait()
    assert during.elapsed < stall["ended"], "no snapshot while the worker was still blocked"
    assert during.health.saturated, during.health
    # The runner last heard from the worker at most a tick after the stall began, and counts
    # silence past two ticks as lag.
    silent_ms = (during.elapsed - stall["began"] - 3 * plan.tick) * 1000
    assert during.health.loop_lag_ms >= silent_ms - 50, (during.health, silent_ms)
