"""A worker process killed mid-run (kill -9): the run ends cleanly and keeps what was measured."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import ServerThread, counting_app
from waiting import OutputLines, until

from stressdeck.sessions.session import Session, load_session

DURATION = 4.0


@dataclass(frozen=True)
class CrashedRun:
    code: int
    out: str
    err: str
    results: dict
    session: Session
    sent_before_kill: int  # requests the server had received when the worker was killed
    killed_at: float  # seconds into the run
    received: int  # requests the server received in all
    children: tuple[psutil.Process, ...]


def _workers(children: list[psutil.Process]) -> list[psutil.Process]:
    # Spawned workers run multiprocessing.spawn; the resource tracker is not a worker.
    return [child for child in children if "spawn_main" in " ".join(child.cmdline())]


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> CrashedRun:
    tmp = tmp_path_factory.mktemp("crash")
    with ServerThread(counting_app()) as server:
        profile = tmp / "p.toml"
        profile.write_text(
            f'name = "p"\nbase_url = "{server.url}"\n[[endpoints]]\nname = "ok"\npath = "/ok"\n'
        )
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stressdeck",
                "run",
                str(profile),
                "--duration",
                f"{DURATION:g}s",
                "--users",
                "4",
                "--processes",
                "2",
                "--save",
                "s.toml",
                "--json",
                "r.json",
            ],
            cwd=tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            lines = OutputLines(process.stdout)
            lines.wait_for("^stressdeck ", timeout=30)
            started = time.monotonic()
            # One second in, all four users active: both workers sending and reporting.
            lines.wait_for(r"users 4/4", timeout=10)
            children = psutil.Process(process.pid).children(recursive=True)
            workers = _workers(children)
            assert len(workers) == 2, [c.cmdline() for c in children]
            sent_before_kill = server.count
            workers[0].send_signal(signal.SIGKILL)
            killed_at = 1.0 + (time.monotonic() - started)
            process.wait(DURATION + 20)
            assert process.stderr is not None
            out, err = lines.text(), process.stderr.read()
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        received = server.count
    return CrashedRun(
        process.returncode,
        out,
        err,
        json.loads((tmp / "r.json").read_text()),
        load_session(tmp / "s.toml"),
        sent_before_kill,
        killed_at,
        received,
        tuple(children),
    )


def test_the_run_ends_cleanly_and_keeps_its_files(crashed: CrashedRun) -> None:
    assert crashed.code == 1, crashed.err  # a crashed worker ends the run: exit 1, "could not run"
    assert "Traceback" not in crashed.err
    assert "TOTAL" in crashed.out
    assert crashed.session.results.total.requests == crashed.results["summary"]["total"]["requests"]
    assert crashed.results["elapsed"] < DURATION + 1


def test_requests_from_before_the_crash_are_counted(crashed: CrashedRun) -> None:
    total = crashed.results["summary"]["total"]
    assert total["requests"] == sum(point["requests"] for point in crashed.results["timeline"])
    assert total["requests"] >= crashed.sent_before_kill * 0.9
    # What the killed worker had measured but not yet handed over is lost: at most its last
    # tick or two, so well under half a second of the run's rate before the kill.
    rate_before = crashed.sent_before_kill / crashed.killed_at
    assert crashed.received - total["requests"] <= 0.5 * rate_before, (
        crashed.received,
        total["requests"],
    )


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie: a zombie has exited and only waits to be reaped by init."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_no_worker_process_survives_the_parent(crashed: CrashedRun) -> None:
    # Both workers (the survivor too) and the resource tracker.
    until(
        lambda: not any(_alive(child) for child in crashed.children),
        30,
        "every worker process of the crashed run has exited",
    )


def test_the_crash_is_reported(crashed: CrashedRun) -> None:
    reason = crashed.session.results.stop_reason
    assert "worker" in reason and "crashed" in reason, reason
    assert "crashed" in crashed.out or "crashed" in crashed.err
    assert crashed.code != 0
