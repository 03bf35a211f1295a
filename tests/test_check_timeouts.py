"""`matches` checks are bounded in time (issue 27.2): a pattern that backtracks for ever on a
body or a header fails that response under a name of its own, and the run ends on time, from
the command line with the worker on a thread and from the Python API, with exact counts."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from aiohttp import web
from conftest import COUNTER, ServerThread

from stressdeck.profiles.checks import parse_check, run_checks, timed_out

# The pattern ('(a+)+$' hangs Python's re for hours on this body) and one that still
# backtracks for ever in the regex package, which the time bound has to catch.
HOSTILE = "a" * 40 + "!"
CHECKS = ["body matches '(a+)+$'", "body matches '(a|aa)+$'", "header:x-tag matches '(a|aa)+$'"]
# Only these two give up: the regex package sees through the first pattern.
TIMING_OUT = CHECKS[1:]
# Generous bounds: they only catch a hang (the run asks for 2 s).
RUN_BOUND_S = 90


def hostile_app() -> web.Application:
    app = web.Application()
    counter = {"count": 0}

    async def answer(request: web.Request) -> web.Response:
        counter["count"] += 1
        return web.Response(text=HOSTILE, headers={"X-Tag": HOSTILE})

    app.router.add_get("/x", answer)
    app[COUNTER] = counter
    return app


def received(server: ServerThread) -> int:
    return server.count


def test_a_backtracking_match_fails_that_check_under_its_own_name() -> None:
    checks = [parse_check(text) for text in CHECKS]
    passed, failed = run_checks(checks, 200, {"x-tag": HOSTILE}, HOSTILE.encode())
    assert passed == 0  # '(a+)+$' does not match a body ending in "!"
    assert failed == [CHECKS[0], *(timed_out(text) for text in TIMING_OUT)]
    assert timed_out(CHECKS[1]) == "timed out after 50 ms: body matches '(a|aa)+$'"
    negated = parse_check("body not matches '(a|aa)+$'")
    # Not knowing is never a pass, negated or not.
    assert run_checks([negated], 200, {}, HOSTILE.encode()) == (0, [timed_out(negated.expr)])


def write_profile(directory: Path, url: str) -> Path:
    path = directory / "redos.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name = "redos"
            base_url = "{url}"
            [[endpoints]]
            name = "x"
            path = "/x"
            checks = {json.dumps(CHECKS)}
            """
        )
    )
    return path


def assert_counted(document: dict, server_count: int) -> None:
    # On time: the duration ended the run (a worker starved of CPU on a loaded machine may
    # still be named late; what it sent is then unaccounted, never lost).
    assert document["stop_reason"].startswith("duration reached")
    assert document["elapsed"] < 10
    endpoint = document["summary"]["endpoints"]["x"]
    unaccounted = document["generator"]["unaccounted"]
    assert server_count > 0
    assert endpoint["requests"] + endpoint["cancelled"] + unaccounted == server_count
    failures = endpoint["check_failures"]
    checked = endpoint["checked"]
    assert checked > 0
    assert failures[CHECKS[0]] == checked
    for text in TIMING_OUT:
        assert failures[timed_out(text)] == checked


def test_the_cli_ends_on_time_with_the_worker_on_a_thread(tmp_path: Path) -> None:
    with ServerThread(hostile_app()) as server:
        profile = write_profile(tmp_path, server.url)
        out = tmp_path / "out.json"
        done = subprocess.run(
            [sys.executable, "-m", "stressdeck", "run", str(profile), "--users", "2",
             "--duration", "2s", "--processes", "1", "--json", str(out)],
            capture_output=True, text=True, timeout=RUN_BOUND_S, cwd=tmp_path,
        )  # fmt: skip
        count = received(server)
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    assert_counted(document, count)
    checked = document["summary"]["endpoints"]["x"]["checked"]
    assert f"x: timed out after 50 ms: body matches '(a|aa)+$' failed {checked} of" in done.stdout


@pytest.mark.parametrize("processes", [1, 2])
def test_the_python_api_returns(tmp_path: Path, processes: int) -> None:
    # In a child: a hang must fail this test, not hang the test run. On 2 processes the
    # server's count still equals requests + cancelled (issue 27.7 saw 4 answered, 0 counted).
    with ServerThread(hostile_app()) as server:
        profile = write_profile(tmp_path, server.url)
        program = textwrap.dedent(
            f"""\
            import json, stressdeck
            results = stressdeck.run(
                {str(profile)!r}, users=2, duration="2s", processes={processes}
            )
            print(json.dumps(results.to_dict()))
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", program],
            capture_output=True, text=True, timeout=RUN_BOUND_S, cwd=tmp_path,
        )  # fmt: skip
        count = received(server)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout.splitlines()[-1])
    assert_counted(document, count)
