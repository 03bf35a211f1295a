"""Worker processes: exact merging, control reaching every process, and no orphans."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from conftest import ServerThread
from test_engine import assert_counted_once, make_plan
from waiting import eventually, until

from stressdeck.engine import start
from stressdeck.engine.processes import STANDBYS


def _workers() -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process().children(recursive=True)
        if "resource_tracker" not in " ".join(p.cmdline())
    ]


async def test_two_processes_count_exactly_and_merge(target: ServerThread) -> None:
    plan = make_plan(
        target.url,
        [{"name": "ok", "path": "/ok", "weight": 2}, {"name": "boom", "path": "/status/500"}],
        users=6,
        requests=600,
    )
    final = await (await start(plan, processes=2)).wait()
    assert final.total.requests == 600 == target.count
    assert final.health.processes == 2
    assert_counted_once(final)
    assert final.total.latency_ms.count == 600  # HDR merge kept every sample


async def test_fewer_users_than_processes_still_spend_the_whole_budget(
    target: ServerThread,
) -> None:
    """1 user on 2 processes: the budget goes to the worker that has the user (the other one
    used to hold a share it could never send, and the run waited for its max duration)."""
    plan = make_plan(target.url, [{"name": "ok", "path": "/ok"}], users=1, requests=3)
    final = await asyncio.wait_for((await start(plan, processes=2)).wait(), timeout=20)
    assert final.total.requests == 3 == target.count
    assert final.stop_reason == "requests done"


async def test_controls_reach_every_process_and_stop_leaves_no_orphans(
    target: ServerThread,
) -> None:
    plan = make_plan(
        target.url,
        [{"name": "slow", "path": "/slow", "query": {"ms": "100"}}],
        users=2,
        duration="20s",
    )
    handle = await start(plan, processes=2)
    children = _workers()
    assert len(children) == 2
    handle.set_users(8)
    await eventually(lambda: handle.latest.active_users == 8, 30, "8 users: 4 in each process")
    began = time.perf_counter()
    final = await handle.stop()
    # A hang guard: the engine aims at a second (STOP_DEADLINE 0.7 s), a busy machine took 1.21.
    assert time.perf_counter() - began < 10.0
    assert final.total.cancelled == 8
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive


@pytest.mark.slow
def test_workers_die_with_a_crashed_parent(target: ServerThread) -> None:
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_engine import make_plan
        from stressdeck.engine import start

        async def main():
            plan = make_plan({target.url!r}, [{{"name": "ok", "path": "/slow", "query": {{"ms": "50"}}}}],
                             users=2, duration="20s")
            await start(plan, processes=2)
            print("started", flush=True)
            await asyncio.sleep(30)

        if __name__ == "__main__":
            asyncio.run(main())
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "started"
        workers = [
            p
            for p in psutil.Process(parent.pid).children()
            if "resource_tracker" not in " ".join(p.cmdline())
        ]
        assert len(workers) == 2
        os.kill(parent.pid, signal.SIGKILL)  # no chance to clean up
        parent.wait(5)
        gone, alive = psutil.wait_procs(workers, timeout=3)
        assert not alive, alive
    finally:
        if parent.poll() is None:
            parent.kill()


async def test_a_run_takes_the_worker_processes_started_ahead_and_counts_exactly(
    target: ServerThread,
) -> None:
    """The console starts its worker processes while its user reads the first screen; the
    run then sends from those very processes, counted exactly, and leaves none behind."""
    STANDBYS.prepare(2)
    processes = _workers()
    ahead = {p.pid for p in processes}
    assert len(ahead) == 2 and STANDBYS.waiting() == 2
    plan = make_plan(
        target.url,
        [{"name": "ok", "path": "/ok", "weight": 2}, {"name": "boom", "path": "/status/500"}],
        users=4,
        requests=300,
    )
    handle = await start(plan, processes=2)
    assert {p.pid for p in _workers()} == ahead and STANDBYS.waiting() == 0
    final = await asyncio.wait_for(handle.wait(), timeout=60)
    assert final.total.requests == 300 == target.count
    assert final.health.processes == 2
    assert_counted_once(final)
    gone, alive = psutil.wait_procs(processes, timeout=10)
    assert not alive


def _still_running(process: psutil.Process) -> bool:
    """Running and not a zombie (one that exited and waits to be reaped by init)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("how", ["exits", "killed"])
def test_worker_processes_started_ahead_and_never_used_leave_with_their_parent(how: str) -> None:
    script = textwrap.dedent("""
        import os, signal, sys
        from stressdeck.engine.processes import STANDBYS

        if __name__ == "__main__":
            STANDBYS.prepare(2)
            print("prepared", flush=True)
            sys.stdin.readline()  # the test has seen its children
            if sys.argv[1] == "exits":
                sys.exit(0)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    parent = subprocess.Popen(
        [sys.executable, "-c", script, how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        # Killed, it leaves its queues' semaphores for the resource tracker to clean up,
        # which says so on stderr: expected here, not this test's output.
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "prepared"
        standbys = [
            p
            for p in psutil.Process(parent.pid).children()
            if "resource_tracker" not in " ".join(p.cmdline())
        ]
        assert len(standbys) == 2
        assert parent.stdin is not None
        parent.stdin.write("go\n")
        parent.stdin.flush()
        parent.wait(30)
        # Gone, or a zombie: exited, waiting to be reaped by init (their parent is gone).
        until(
            lambda: not any(_still_running(p) for p in standbys),
            10,
            f"standbys gone once their parent {how}",
        )
    finally:
        if parent.poll() is None:
            parent.kill()
