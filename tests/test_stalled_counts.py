"""What a stalled worker sent is never lost from the counts (issue 27.7): a worker process
stopped dead (SIGSTOP) mid-run never sends its final delta, yet the server's count equals
requests + cancelled + unaccounted exactly, because each worker counts what it hands to a
connection into memory the runner reads live, ahead of the deltas. And a worker killed in
the middle of a message never hangs the runner reading it."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import psutil
import pytest
from conftest import ServerThread
from faults import FaultServer
from test_engine import make_plan
from test_truth import settled
from waiting import eventually, until

from stressdeck.engine import start
from stressdeck.engine.placement import Share
from stressdeck.engine.processes import ProcessWorker
from stressdeck.engine.runner import STOP_DEADLINE, WORKER_START_TIMEOUT
from stressdeck.engine.snapshot import Control
from stressdeck.engine.worker import Command


@pytest.mark.slow
@pytest.mark.parametrize("model", ["open", "closed"])
async def test_a_frozen_workers_sent_requests_are_unaccounted_not_lost(model: str) -> None:
    with FaultServer() as server:
        # A bounded load either way: 200/s, or 4 users each waiting on a 5 ms answer.
        load = {"model": "open", "rate": 200, "connections": 4} if model == "open" else {}
        plan = make_plan(
            server.url, [{"name": "ok", "path": "/slow"}], users=4, duration="30s", **load
        )
        handle = await start(plan, processes=2)
        frozen = handle._workers[1].pid  # type: ignore[attr-defined]
        assert frozen is not None
        await eventually(
            lambda: handle._book.record(1).report is not None, what="worker 1 has reported"
        )
        await eventually(lambda: server.seen("/slow") >= 40, what="requests have landed")
        os.kill(frozen, signal.SIGSTOP)
        try:
            async with asyncio.timeout(10):
                async for snapshot in handle.snapshots():
                    if snapshot.stalled == (1,):
                        break
            final = await handle.stop()
        finally:
            if psutil.pid_exists(frozen):
                os.kill(frozen, signal.SIGKILL)
        seen = await settled(server, "/slow")
    assert "worker 1 stalled and was ended at stop" in final.stop_reason
    assert f"{final.health.unaccounted} requests unaccounted" in final.stop_reason
    assert final.health.unaccounted > 0  # it had at least its users' requests out
    assert final.total.errors == 0
    assert seen == final.total.requests + final.total.cancelled + final.health.unaccounted


@pytest.mark.slow
async def test_a_blocked_worker_threads_sent_requests_are_unaccounted_not_lost() -> None:
    # The API's default: the worker on a thread. Its event loop is blocked for longer than
    # the stop deadline (as a check that never returned used to block it), right after
    # answers came back and before its next tick could report them.
    with FaultServer() as server:
        plan = make_plan(server.url, [{"name": "ok", "path": "/slow"}], users=2, duration="30s")
        handle = await start(plan)
        worker = handle._workers[0]
        await eventually(
            lambda: handle._book.record(0).report is not None, what="the worker has reported"
        )
        await eventually(lambda: server.seen("/slow") >= 40, what="requests have landed")
        loop = worker._loop  # type: ignore[attr-defined]
        loop.call_soon_threadsafe(time.sleep, STOP_DEADLINE + 2.5)
        async with asyncio.timeout(10):
            async for snapshot in handle.snapshots():
                if snapshot.stalled == (0,):
                    break
        final = await handle.stop()
        seen = await settled(server, "/slow")
        assert worker.join(10)
    assert "worker 0 stalled and was ended at stop" in final.stop_reason
    assert final.health.unaccounted > 0
    assert final.total.errors == 0
    assert seen == final.total.requests + final.total.cancelled + final.health.unaccounted


@pytest.mark.slow
def test_a_worker_process_killed_mid_message_does_not_hang_the_runner(
    target: ServerThread,
) -> None:
    # Nobody reads the worker's messages for a while, so its pipe fills and its last delta
    # (thousands of endpoints each) is left half written; then the worker is killed, as a
    # stop kills a late one. Reading what it left must end, not wait for the rest for ever.
    plan = make_plan(
        target.url,
        [{"name": f"e{i}", "path": f"/ok?e={i}"} for i in range(2_000)],
        users=4,
        duration="30s",
    )
    worker = ProcessWorker(plan, Share(0, 4, None, None))
    worker.start()
    assert worker.wait_ready(WORKER_START_TIMEOUT)
    worker.send(Command(Control.RESUME))
    until(lambda: target.count >= 3_000, timeout=60, what="requests have landed")
    assert worker.join(0)  # killed at once: it was still running
    polled: list[int] = []
    reader = threading.Thread(target=lambda: polled.append(len(worker.poll())), daemon=True)
    reader.start()
    reader.join(10)
    assert polled, "poll() hung on the half-written message of a killed worker"
    assert polled[0] > 0  # the whole deltas before it are still read
