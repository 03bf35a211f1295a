"""The console's process from outside: it ends, and keeps what it measured, when its
terminal goes away (an SSH connection drops, tmux kills the session) or a signal comes,
whatever hangs inside. A real `python -m stressdeck` on a real pseudo-terminal, a real
server on 127.0.0.1; every wait is on a condition, bounded only to catch a hang.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import psutil
import pytest
from test_ui_support import write_profile
from waiting import until

from stressdeck.sessions.session import load_session

ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\\\)|[@-Z\\\\-_])")
EXIT_BOUND_S = 30  # generous: a busy machine; the console takes well under 2 s


class TerminalConsole:
    """`python -m stressdeck ARGS` on a pseudo-terminal (80x24) whose far side this test
    holds. ``controlling``: the terminal is the console's controlling terminal, so closing
    it sends SIGHUP as the kernel does for an SSH drop; otherwise only its reads and writes
    fail (EIO), as for a console started where the hang-up does not reach it."""

    def __init__(self, args: list[str], cwd: Path, *, controlling: bool = True) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}

        def take_terminal() -> None:  # in the child, after setsid()
            if controlling:
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.process = subprocess.Popen(
            [sys.executable, "-m", "stressdeck", *args],
            cwd=cwd,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=take_terminal,
        )
        os.close(slave)
        self.output = bytearray()
        self.reading = True
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while self.reading:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the console closed the terminal, or we did
                return
            if not data:
                return
            self.output += data

    @property
    def text(self) -> str:
        return ANSI.sub("", self.output.decode("utf-8", errors="replace"))

    def press(self, key: bytes) -> None:
        os.write(self.master, key)

    def hang_up(self) -> None:
        """The terminal goes away: its far side is closed."""
        self.reading = False
        os.close(self.master)
        self.master = -1

    def workers(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.master >= 0:
            os.close(self.master)


def start_run(console: TerminalConsole, target: object) -> None:
    until(lambda: "Start/Stop" in console.text, EXIT_BOUND_S, "the console drew its footer")
    # A key is read once the app runs, and the footer can be drawn a moment before: press
    # again only when the first press showed no sign of a run (a second would stop it).
    for _ in range(6):
        console.press(b"s")
        try:
            until(lambda: target.count > 0 or "RUNNING" in console.text, 5, "a run")  # type: ignore[attr-defined]
        except AssertionError:
            continue
        break
    until(lambda: target.count > 20, EXIT_BOUND_S, "the run sent requests")  # type: ignore[attr-defined]


@pytest.mark.parametrize("processes", ["1", "2"], ids=["thread-worker", "process-workers"])
@pytest.mark.parametrize("controlling", [True, False], ids=["sighup", "eio-only"])
def test_a_console_whose_terminal_goes_away_ends_and_keeps_its_run(
    tmp_path: Path, target, processes: str, controlling: bool
) -> None:
    profile = write_profile(tmp_path, target.url, duration="60s")
    sessions = tmp_path / "sessions"
    console = TerminalConsole(
        [str(profile), "--processes", processes, "--sessions-dir", str(sessions)],
        tmp_path,
        controlling=controlling,
    )
    try:
        start_run(console, target)
        workers = console.workers()
        console.hang_up()
        code = console.process.wait(EXIT_BOUND_S)
        # Its worker processes end with it: none is left behind as an orphan or a zombie.
        until(
            lambda: not any(w.is_running() and w.status() != "zombie" for w in workers),
            EXIT_BOUND_S,
            "the worker processes ended",
        )
    finally:
        console.close()
    assert code == 129  # a hang-up: 128 + SIGHUP, as a shell reports it
    saved = list(sessions.glob("autosave-*.toml"))
    assert len(saved) == 1, console.text[-1500:]
    session = load_session(saved[0])
    assert session.results.stop_reason == "interrupted (SIGHUP)"
    assert session.results.total.requests > 0
    # Every request the server answered is in the session, counted or cancelled.
    total = session.results.total
    assert target.count == total.requests + total.cancelled + session.results.generator.unaccounted


def test_the_console_starts_its_worker_processes_while_its_user_reads_and_the_run_takes_them(
    tmp_path: Path, target
) -> None:
    """Issue 27.14 (start-up): once the first screen is up the console starts the next
    run's worker processes, so `s` sends without waiting for them to import the engine; the
    run sends from those very processes (their exact counts: tests/test_procs.py)."""
    profile = write_profile(tmp_path, target.url, duration="60s")
    sessions = tmp_path / "sessions"
    console = TerminalConsole(
        [str(profile), "--processes", "2", "--sessions-dir", str(sessions)], tmp_path
    )

    def standbys() -> list[psutil.Process]:
        return [p for p in console.workers() if "resource_tracker" not in " ".join(p.cmdline())]

    try:
        until(lambda: "IDLE" in console.text, EXIT_BOUND_S, "the console drew its first screen")
        until(lambda: len(standbys()) == 2, EXIT_BOUND_S, "two worker processes started")
        ahead = {p.pid for p in standbys()}
        assert target.count == 0  # started, not sending: no run yet
        start_run(console, target)
        assert {p.pid for p in standbys()} == ahead  # the run took them, spawned none
    finally:
        console.close()
