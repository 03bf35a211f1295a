"""The pytest plugin's baselines, through pytest itself: --stressdeck-save writes them,
--stressdeck-baseline judges each run against the session of the same name: the same server
passes, a server failing half its requests fails the test with the comparison table, a missing baseline warns."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

SUITE = '''
import asyncio
import os
import threading

import pytest
from aiohttp import web

SERVICE_S = float(os.environ["STRESSDECK_TEST_SERVICE_S"])
FAIL_EVERY = int(os.environ.get("STRESSDECK_TEST_FAIL_EVERY", "0"))  # 2: every 2nd fails


@pytest.fixture(scope="module")
def url():
    """A server on 127.0.0.1 answering after SERVICE_S, on its own thread and loop."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    where = {}

    answered = [0]

    async def work(request):
        await asyncio.sleep(SERVICE_S)
        answered[0] += 1
        if FAIL_EVERY and answered[0] % FAIL_EVERY == 0:
            return web.Response(status=500, text="broken")
        return web.Response(text="done")

    def serve():
        asyncio.set_event_loop(loop)
        app = web.Application()
        app.router.add_get("/work", work)
        runner = web.AppRunner(app, handle_signals=False)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        where["url"] = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        started.set()
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    assert started.wait(10)
    yield where["url"]
    loop.call_soon_threadsafe(loop.stop)


def test_checkout(stressdeck, url):
    stressdeck.run(
        {
            "name": "checkout",
            "base_url": url,
            "load": {"model": "closed", "users": 10, "duration": "3s"},
            "endpoints": [{"name": "work", "path": "/work"}],
        }
    )
'''


def pytest_run(
    suite: Path, service_s: float, *args: str, fail_every: int = 0
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "STRESSDECK_TEST_SERVICE_S": str(service_s),
        "STRESSDECK_TEST_FAIL_EVERY": str(fail_every),
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "-W",
            "default",
            *args,
        ],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _property(junit: Path, name: str) -> str | None:
    case = next(ElementTree.parse(junit).getroot().iter("testcase"))
    return {p.get("name"): p.get("value") for p in case.iter("property")}.get(name)


def test_baselines_are_written_then_judge_later_runs(tmp_path: Path) -> None:
    suite, base = tmp_path / "suite", tmp_path / "baseline"
    suite.mkdir()
    (suite / "test_load.py").write_text(SUITE)
    # no baseline yet: a warning that says how to write one, not a silent pass
    done = pytest_run(suite, 0.05, "--stressdeck-baseline", str(base))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "StressdeckBaselineWarning" in done.stdout
    assert f"no baseline session {base / 'test_load.py_test_checkout-1.toml'}" in done.stdout
    # --stressdeck-save writes the baseline under the name the judging looks for
    done = pytest_run(
        suite, 0.05, "--stressdeck-baseline", str(base), "--stressdeck-save", str(base)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in base.iterdir()) == ["test_load.py_test_checkout-1.toml"]
    # the same server: not a regression (no change, or inconclusive as a warning)
    junit = tmp_path / "same.xml"
    done = pytest_run(suite, 0.05, "--stressdeck-baseline", str(base), "--junitxml", str(junit))
    assert done.returncode == 0, done.stdout + done.stderr
    assert _property(junit, "stressdeck.1.baseline") in ("same", "inconclusive")
    # half the requests now fail: counted, not timed, so no host's noise can hide it; the
    # test fails with the comparison table
    junit = tmp_path / "broken.xml"
    done = pytest_run(
        suite, 0.05, "--stressdeck-baseline", str(base), "--junitxml", str(junit), fail_every=2
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed" in done.stdout
    assert f"regression against the baseline {base / 'test_load.py_test_checkout-1.toml'}" in (
        done.stdout
    )
    assert "verdict: regression:" in done.stdout and "total err %" in done.stdout
    assert "base [95 % interval]" in done.stdout
    assert _property(junit, "stressdeck.1.baseline") == "regression"
