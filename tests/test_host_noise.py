"""The host's noise (other processes' CPU during a run) is read by the engine and kept in every
session, however the run was started and saved: the Python API, the pytest plugin and the
console's save and autosave (the command line's is in test_compare_runs.py). Real runs
against a real server on 127.0.0.1; the meter itself against real processes burning CPU."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
from conftest import ServerThread
from test_ui_support import console, start, wait_for, write_profile
from textual.widgets import Input
from waiting import until

import stressdeck
from stressdeck.engine import hostload
from stressdeck.engine.hostload import HostMeter
from stressdeck.engine.runner import HOST_READ_EVERY
from stressdeck.engine.snapshot import STOPPED
from stressdeck.sessions.session import Session, load_session
from stressdeck.ui.screens.dashboard import DashboardScreen
from stressdeck.ui.screens.dialogs import SaveScreen

CPU_SECONDS = 1.0  # what each burner spends, in CPU time: the same on an idle or a busy host
# CPU times advance in clock ticks (10 ms) and HostNoise rounds the share to 0.1 % of the
# span: a few ticks either way.
TICKS = 0.05
BURN = f"import time\nwhile time.process_time() < {CPU_SECONDS}:\n    pass\n"


def _burn() -> None:
    exec(BURN)


def _other_seconds(noise: hostload.HostNoise) -> float:
    return noise.other_cpu_percent / 100 * noise.seconds * (os.cpu_count() or 1)


def test_a_neighbour_burning_cpu_is_other_processes_cpu() -> None:
    meter = HostMeter()
    # Started through a shell that exits at once: the burner is nobody's child here, as
    # another tenant of the machine is.
    shell = subprocess.run(
        ["sh", "-c", f'"{sys.executable}" -c "$0" >/dev/null 2>&1 & echo $!', BURN],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    burner = int(shell.stdout.strip())
    assert burner not in {p.pid for p in psutil.Process().children(recursive=True)}
    until(lambda: not psutil.pid_exists(burner), 120, "the neighbour's CPU second spent")
    noise = meter.read()
    assert noise is not None
    assert _other_seconds(noise) >= CPU_SECONDS - TICKS, noise
    assert noise.load_average >= 0.0


def test_a_worker_process_that_ended_is_the_generators_own_cpu() -> None:
    """A worker process joined before the run's last reading takes its seconds into its
    parent's children times: ours, never another process's (2 workers burning 2 cores would
    otherwise read as a busy host and make compare inconclusive)."""
    before = hostload._own_seconds()
    worker = multiprocessing.get_context("spawn").Process(target=_burn)
    worker.start()
    worker.join(120)
    assert worker.exitcode == 0
    assert hostload._own_seconds() - before >= CPU_SECONDS - TICKS


def _profile(url: str, duration: str = "1s") -> dict[str, Any]:
    return {
        "name": "host noise",
        "base_url": url,
        "load": {"model": "closed", "users": 2, "duration": duration},
        "endpoints": [{"name": "ok", "path": "/ok"}],
    }


def _assert_noise_of_the_run(session: Session) -> None:
    noise = session.host.noise
    assert noise is not None, "the session keeps no host noise"
    assert 0.0 <= noise.other_cpu_percent <= 100.0
    assert noise.load_average >= 0.0
    # Read from the workers' release to the final snapshot: the whole run, and not long after.
    elapsed = session.results.elapsed
    assert elapsed - 0.001 <= noise.seconds <= elapsed + 10, (noise, elapsed)


def test_the_python_api_keeps_the_host_noise(target: ServerThread, tmp_path: Path) -> None:
    path = tmp_path / "api.toml"
    results = stressdeck.run(_profile(target.url), save=str(path))
    assert results.total.requests + results.total.cancelled == target.count > 0
    _assert_noise_of_the_run(load_session(path))
    # RunResults.save (after the run) keeps it too.
    again = results.save(tmp_path / "again.json")
    assert load_session(again).host.noise == load_session(path).host.noise


SUITE = """
import os


def test_load(stressdeck):
    stressdeck.run(
        {
            "name": "plugin",
            "base_url": os.environ["STRESSDECK_TEST_URL"],
            "load": {"model": "closed", "users": 2, "duration": "1s"},
            "endpoints": [{"name": "ok", "path": "/ok"}],
        }
    )
"""


def test_the_pytest_plugin_keeps_the_host_noise(target: ServerThread, tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_suite.py").write_text(SUITE)
    saved = tmp_path / "saved"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "STRESSDECK_TEST_URL": target.url}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", str(suite)]
        + ["--stressdeck-save", str(saved)],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [path] = sorted(saved.glob("*.toml"))
    session = load_session(path)
    total = session.results.total
    assert total.requests + total.cancelled == target.count > 0
    _assert_noise_of_the_run(session)


async def test_the_console_save_keeps_the_host_noise(target: ServerThread, tmp_path: Path) -> None:
    profile = write_profile(tmp_path, target.url, duration="1s")
    app = console(profile, tmp_path)
    saved = tmp_path / "sessions" / "console.toml"
    async with app.run_test(size=(100, 30)) as pilot:
        await start(app, pilot)
        assert app.controller is not None
        # the run ends by itself (1 s): the final snapshot holds the whole run's reading
        await wait_for(pilot, lambda: app.controller.state == STOPPED, timeout=60)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SaveScreen))
        app.screen.query_one(Input).value = saved.name
        await pilot.press("enter")
        await wait_for(pilot, lambda: saved.exists() and isinstance(app.screen, DashboardScreen))
    session = load_session(saved)
    total = session.results.total
    assert total.requests + total.cancelled == target.count > 0
    _assert_noise_of_the_run(session)


async def test_the_console_autosave_keeps_the_host_noise(
    target: ServerThread, tmp_path: Path
) -> None:
    profile = write_profile(tmp_path, target.url, duration="30s")
    app = console(profile, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await start(app, pilot)
        assert app.controller is not None
        handle = app.controller.handle
        assert handle is not None
        # a second and more: the reading taken while the run goes is there before the stop
        await wait_for(pilot, lambda: handle.latest.elapsed >= 1.2, timeout=60)
        assert handle.latest.host_noise is not None
        written = await app.controller.stop_and_autosave("interrupted (SIGTERM)", tmp_path / "s")
    assert written is not None and written.parent == tmp_path / "s"
    session = load_session(written)
    assert session.results.stop_reason == "interrupted (SIGTERM)"
    total = session.results.total
    assert total.requests + total.cancelled == target.count > 0
    _assert_noise_of_the_run(session)


def test_a_reading_while_the_run_goes_spans_the_run_so_far(target: ServerThread) -> None:
    with stressdeck.start(_profile(target.url, duration="30s")) as live:
        until(lambda: live.latest.host_noise is not None, 60, "the first reading")
        first = live.latest.host_noise
        assert first is not None and 0 < first.seconds <= live.latest.elapsed + 1.5
        until(
            lambda: (n := live.latest.host_noise) is not None and n.seconds > first.seconds,
            60,
            "the next reading",
        )
        second = live.latest.host_noise
        assert second is not None and second.seconds <= live.latest.elapsed + 1.5
        # a walk of /proc on the runner's loop: no more often than HOST_READ_EVERY
        assert second.seconds - first.seconds >= HOST_READ_EVERY - 0.1
        live.stop()
