"""The headless command's process from outside: Ctrl+C at its first moments, a reader that
leaves its output, and a stop signal that something inside does not let through. Real
`python -m stressdeck` processes, real signals (Ctrl+C reaches the whole process group:
so does ``os.killpg`` here), a real server on 127.0.0.1; waits are on conditions.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from conftest import ServerThread, counting_app
from waiting import OutputLines, until

from stressdeck.core.signals import GRACE_S, UNHEARD_S
from stressdeck.sessions.session import load_session

BOUND_S = 30  # catches a hang; a clean end takes about a second
STRESSDECK = [sys.executable, "-m", "stressdeck"]
# The `stressdeck` script as pip writes it for the entry point in pyproject.toml.
SCRIPT = [
    sys.executable,
    "-c",
    "import sys; from stressdeck.__main__ import entry; sys.exit(entry())",
]


def _profile(directory: Path, base_url: str) -> Path:
    path = directory / "p.json"
    path.write_text(
        json.dumps(
            {
                "name": "p",
                "base_url": base_url,
                "load": {"users": 2},
                "endpoints": [{"name": "ok", "path": "/ok", "think": "20ms"}],
            }
        )
    )
    return path


def _catches_stop_signals(pid: int) -> bool:
    """The process has its own handlers for SIGINT, SIGTERM and SIGHUP (the kernel's view)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    line = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    caught = int(line.split()[1], 16)
    return all(caught >> (s - 1) & 1 for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP))


def _spawning_a_worker(pid: int) -> bool:
    """A worker process of ``pid`` exists, still in multiprocessing's bootstrap or later."""
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return False
    for child in children:
        try:
            if "multiprocessing.spawn" in " ".join(child.cmdline()):
                return True
        except psutil.Error:
            continue
    return False


MOMENTS = {
    # Our handlers are in place: the imports (aiohttp, the engine) are under way.
    "importing": _catches_stop_signals,
    # A worker process is being born: spawn's bootstrap imports the engine in the child.
    "spawning-workers": _spawning_a_worker,
}


@pytest.mark.parametrize("moment", sorted(MOMENTS))
@pytest.mark.parametrize("command", ["python-m", "script"])
def test_ctrl_c_at_the_first_moments_prints_no_traceback_and_keeps_no_empty_session(
    tmp_path: Path, moment: str, command: str
) -> None:
    with ServerThread(counting_app()) as server:
        profile = _profile(tmp_path, server.url)
        process = subprocess.Popen(
            [*(STRESSDECK if command == "python-m" else SCRIPT), "run", str(profile)]
            + ["--duration", "20s", "--processes", "2"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, as a shell gives a command
        )
        try:
            until(
                lambda: MOMENTS[moment](process.pid) or process.poll() is not None,
                BOUND_S,
                moment,
            )
            os.killpg(process.pid, signal.SIGINT)  # Ctrl+C: the whole group
            out, err = process.communicate(timeout=BOUND_S)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        sent = server.count
    assert process.returncode == 130, (out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    sessions = list((tmp_path / "sessions").glob("*.toml"))
    if sent == 0:  # nothing was sent: nothing is kept
        assert sessions == [], (out, err)
    else:
        assert len(sessions) == 1 and "partial session saved: " in out, (out, err)


def test_a_reader_that_leaves_loses_neither_the_run_nor_its_results_file(tmp_path: Path) -> None:
    """`stressdeck run URL --json f.json | head -2`."""
    with ServerThread(counting_app()) as server:
        results = tmp_path / "f.json"
        process = subprocess.Popen(
            [*STRESSDECK, "run", f"{server.url}/ok", "--duration", "2s", "--users", "2"]
            + ["--processes", "1", "--json", str(results)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        head = [process.stdout.readline(), process.stdout.readline()]  # head -2
        process.stdout.close()  # ... and head is gone
        err = OutputLines(process.stderr)
        code = process.wait(BOUND_S)
        sent = server.count
    assert head[0].startswith("stressdeck "), head
    assert code == 0, err.text()  # the run's own code: it ran to its end
    assert "Traceback" not in err.text()
    assert "standard output was closed" in err.text()
    document = json.loads(results.read_text())
    assert document["stop_reason"] == "duration reached"
    total = document["summary"]["total"]
    assert sent > 0
    assert sent == total["requests"] + total["cancelled"] + document["generator"]["unaccounted"]


HANG = textwrap.dedent(
    """
    import pathlib, sys, threading
    from stressdeck.core.signals import keep_on_forced_exit, stop_signals

    def last_words():
        pathlib.Path(sys.argv[1]).write_text("what was measured")
        return "kept: " + sys.argv[1]

    with stop_signals():
        keep_on_forced_exit(last_words)
        print("hanging", flush=True)
        # The main thread blocked on a lock for ever, as Textual's in Queue.put on a dead
        # terminal was: its stop can never come.
        threading.Event().wait()
    """
)


@pytest.mark.parametrize(
    ("signals", "code", "reason"),
    [
        ([signal.SIGTERM], 130, f"not stopped {GRACE_S:g} s after SIGTERM"),
        ([signal.SIGHUP, signal.SIGHUP], 129, f"not stopped {GRACE_S:g} s after SIGHUP"),
        # Python runs pending handlers in signal-number order: either may count as second.
        ([signal.SIGTERM, signal.SIGINT], 130, "a second stop signal (SIG"),
    ],
    ids=["grace", "hangup-twice-is-no-second-signal", "second-signal"],
)
def test_the_watchdog_ends_a_process_whose_stop_hangs_and_keeps_what_was_measured(
    tmp_path: Path, signals: list[int], code: int, reason: str
) -> None:
    kept = tmp_path / "kept.txt"
    process = subprocess.Popen(
        [sys.executable, "-c", HANG, str(kept)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out = OutputLines(process.stdout)
        out.wait_for("hanging", BOUND_S)
        started = time.monotonic()
        for signum in signals:
            process.send_signal(signum)
        assert process.wait(BOUND_S) == code
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stderr is not None
    err = process.stderr.read()
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"stressdeck: {reason}"), err
    assert lines[0].endswith(": ending now") and lines[1] == f"kept: {kept}", err
    assert kept.read_text() == "what was measured"
    if reason.startswith("not stopped"):
        assert took >= GRACE_S  # the clean stop had its time


BLOCKED_IN_C = textwrap.dedent(
    """
    import os, pathlib, signal, sys, threading, time
    from stressdeck.core.signals import STOP_SIGNALS, keep_on_forced_exit, stop_signals

    def last_words():
        pathlib.Path(sys.argv[1]).write_text("what was measured")
        return "kept: " + sys.argv[1]

    def busy():  # a thread the kernel may hand a signal to
        while True:
            time.sleep(0.05)

    with stop_signals():
        keep_on_forced_exit(last_words)
        if sys.argv[2] == "other-thread":
            # As a library may: the main thread blocks the stop signals, so the kernel
            # delivers them to another thread, and the main thread's wait is never broken.
            threading.Thread(target=busy, daemon=True).start()
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            print("blocked", flush=True)
            threading.Event().wait()
        else:
            print("blocked", flush=True)
            # glibc's system() waits for its child in C and retries on EINTR: no bytecode
            # runs on the main thread, so no Python-level signal handler, for 10 minutes.
            os.system("sleep 600")
    """
)


@pytest.mark.parametrize("where", ["system-call", "other-thread"])
def test_the_watchdog_hears_a_signal_while_the_main_thread_is_blocked_in_c(
    tmp_path: Path, where: str
) -> None:
    """The watchdog is told by the interpreter's C-level handler (the wakeup fd), not by
    the Python-level one, which needs the main thread to run bytecode; and as that handler
    did not run, the main thread can stop nothing: it ends the process after UNHEARD_S,
    not the whole GRACE_S."""
    kept = tmp_path / "kept.txt"
    process = subprocess.Popen(
        [sys.executable, "-c", BLOCKED_IN_C, str(kept), where],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its `sleep 600` is killed with the group afterwards
    )
    try:
        out = OutputLines(process.stdout)
        out.wait_for("blocked", BOUND_S)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(BOUND_S) == 130
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.stderr is not None
    err = process.stderr.read()
    assert err.splitlines() == [
        f"stressdeck: SIGTERM not heard in {UNHEARD_S:g} s (blocked outside Python): ending now",
        f"kept: {kept}",
    ], err
    assert kept.read_text() == "what was measured"
    assert took >= UNHEARD_S


FORCED_KEEP = textwrap.dedent(
    """
    import argparse, asyncio, os, sys, threading
    from stressdeck.cli.run import _forced_keep
    from stressdeck.core.signals import keep_on_forced_exit, stop_signals
    from stressdeck.engine import build_plan, start
    from stressdeck.profiles.profile import load_profile

    plan = build_plan(load_profile(sys.argv[1]))
    handles, running = [], threading.Event()

    def run_beside():  # the run on a loop of its own: the main thread is about to be stuck
        async def go():
            handles.append(await start(plan))
            while handles[0].latest.total.requests < 20:
                await asyncio.sleep(0.05)
            running.set()
            await handles[0].wait()
        asyncio.run(go())

    with stop_signals():
        threading.Thread(target=run_beside, daemon=True).start()
        running.wait()
        args = argparse.Namespace(keep_secrets=False)
        keep_on_forced_exit(lambda: _forced_keep(args, plan, handles[0], None))
        print("running", flush=True)
        os.system("sleep 600")  # blocked in C: the clean stop never comes
    """
)


def test_a_run_the_watchdog_ends_is_kept_as_interrupted_by_its_signal(
    tmp_path: Path,
) -> None:
    """Its stop never began, so no reason was given: the partial session the watchdog
    writes names the signal as every other interrupted run does."""
    with ServerThread(counting_app()) as server:
        profile = _profile(tmp_path, server.url)
        process = subprocess.Popen(
            [sys.executable, "-c", FORCED_KEEP, str(profile)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            OutputLines(process.stdout).wait_for("running", BOUND_S)
            process.send_signal(signal.SIGTERM)
            assert process.wait(BOUND_S) == 130
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    assert process.stderr is not None
    lines = process.stderr.read().splitlines()
    assert lines[0].startswith("stressdeck: SIGTERM not heard"), lines
    assert lines[1].startswith("partial session saved: "), lines
    session = load_session(tmp_path / lines[1].split(": ", 1)[1])
    assert session.results.stop_reason == "interrupted (SIGTERM)"
    assert session.results.total.requests >= 20


@pytest.mark.parametrize("processes", ["1", "2"], ids=["thread-worker", "process-workers"])
@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 130), (signal.SIGHUP, 129)],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_a_signal_mid_run_ends_it_and_keeps_every_count(
    tmp_path: Path, processes: str, signum: int, code: int
) -> None:
    """The worker on a thread of this process (--processes 1) or in processes of its own.
    The stop reason names the signal, in the same words as the console's: in the summary,
    the --json document and the session."""
    with ServerThread(counting_app()) as server:
        profile = _profile(tmp_path, server.url)
        command = [*STRESSDECK, "run", str(profile), "--duration", "60s", "--json", "r.json"]
        process = subprocess.Popen(
            [*command, "--processes", processes],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out = OutputLines(process.stdout)
            out.wait_for(r"^\[ *1\.0s\]", BOUND_S)  # a first second of load measured
            process.send_signal(signum)
            exited = process.wait(BOUND_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        sent = server.count
    assert exited == code
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()
    reason = f"interrupted ({signal.Signals(signum).name})"
    saved = [line for line in out.text().splitlines() if line.startswith("partial session ")]
    assert len(saved) == 1, out.text()
    assert f"s, {reason}" in out.text()  # the summary's "elapsed 1.23s, interrupted (...)"
    assert json.loads((tmp_path / "r.json").read_text())["stop_reason"] == reason
    session = load_session(tmp_path / saved[0].split(": ", 1)[1])
    results = session.results
    assert results.stop_reason == reason
    assert sent > 0
    assert sent == results.total.requests + results.total.cancelled + results.generator.unaccounted
