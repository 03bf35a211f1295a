"""Compare on real runs against real servers: identical runs are not a regression, a server
30 % slower is, and a run too short to measure its noise is inconclusive (exit 4).

The servers answer after a fixed service time; the verdicts rest on the measured noise, not
on how fast this machine is: nothing here bounds a duration except to catch a hang."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).parent))

from conftest import ServerThread
from session_support import run_sync

from stressdeck.cli import main
from stressdeck.sessions.compare import INCONCLUSIVE, REGRESSION, TOTAL, compare_sides
from stressdeck.sessions.session import Session, build_session, load_session, write_session

SERVICE_S = 0.050


def service_app(seconds: float) -> web.Application:
    async def work(request: web.Request) -> web.Response:
        await asyncio.sleep(seconds)
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/work", work)
    return app


def run(url: str, duration: str = "3s", users: int = 10) -> Session:
    document = {
        "name": "compare runs",
        "base_url": url,
        "load": {"model": "closed", "users": users, "duration": duration},
        "endpoints": [{"name": "work", "path": "/work"}],
    }
    plan, snapshot = run_sync(document)
    return build_session(plan, snapshot)


def test_two_runs_against_the_same_server_are_not_a_regression() -> None:
    with ServerThread(service_app(SERVICE_S)) as server:
        base, new = run(server.url), run(server.url)
    comparison = compare_sides([base], [new])
    assert comparison.verdict != REGRESSION, comparison.regressions
    total = comparison.rows[-1]
    assert total.name == TOTAL and total.base is not None and total.new is not None
    assert total.base.requests == base.results.total.requests > 100
    for change in total.changes[1:]:  # every judged figure carries its interval
        assert change.base_interval is not None and change.new_interval is not None
        assert change.base_interval.low <= change.base <= change.base_interval.high


def test_a_server_30_percent_slower_is_a_regression(tmp_path: Path) -> None:
    """Its first conclusive verdict is a regression. On a host so busy that two runs a side
    cannot tell (inconclusive: the generator starved, the noise beyond three tolerances, or
    the host's other load changed between the sides), more runs are what a tester would
    take: up to five rounds, each side's runs interleaved with the other's (fast, slow, fast,
    slow) so that a neighbour coming and going touches both sides alike."""
    with (
        ServerThread(service_app(SERVICE_S)) as fast,
        ServerThread(service_app(SERVICE_S * 1.3)) as slow,
    ):
        for _round in range(5):
            runs = [run(url) for url in (fast.url, slow.url, fast.url, slow.url)]
            sides = runs[0::2], runs[1::2]
            comparison = compare_sides(*sides)
            if comparison.verdict != INCONCLUSIVE:
                break
    assert comparison.verdict == REGRESSION, [
        (name, c.metric, c.base, c.new, c.noise_text, c.reason)
        for row in comparison.rows
        for name, c in [(row.name, c) for c in row.changes]
    ]
    # 10 users at 50 ms then 65 ms: latency up and, in the closed model, throughput down
    regressed = {change.metric for name, change in comparison.regressions if name == TOTAL}
    assert regressed and regressed <= {"p50", "p95", "p99", "rps"}
    # the same sessions through the command line, two runs a side
    paths = []
    for side, sessions in zip("ab", sides, strict=True):
        for i, session in enumerate(sessions):
            paths.append(str(write_session(tmp_path / f"{side}{i}.json", session)))
    assert main(["compare", *paths[:2], "--", *paths[2:]]) == 3


def test_runs_too_short_to_measure_are_inconclusive(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with ServerThread(service_app(0.001)) as server:
        base = run(server.url, duration="0.6s", users=1)
        new = run(server.url, duration="0.6s", users=1)
    comparison = compare_sides([base], [new])
    assert comparison.verdict == INCONCLUSIVE
    reasons = {change.reason for _name, change in comparison.inconclusive}
    assert "base: 1 second(s) of timeline with requests: too short to measure the noise" in reasons
    a = write_session(tmp_path / "a.toml", base)
    b = write_session(tmp_path / "b.toml", new)
    assert main(["compare", str(a), str(b)]) == 4
    assert "verdict: inconclusive" in capsys.readouterr().out


def test_repeat_saves_runs_that_compare_takes_as_directories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ServerThread(service_app(0.005)) as server:
        url = f"{server.url}/work"
        base, new = tmp_path / "base", tmp_path / "new"
        args = ["--users", "2", "--duration", "1.2s", "--quiet", "--repeat", "2"]
        assert main(["run", url, *args, "--save", str(base)]) == 0
        assert sorted(p.name for p in base.iterdir()) == ["run-01.toml", "run-02.toml"]
        replay = ["replay", str(base / "run-01.toml"), "--base-url", server.url]
        assert main([*replay, "--repeat", "2", "--save", str(new), "--quiet"]) == 0
        assert sorted(p.name for p in new.iterdir()) == ["replay-01.toml", "replay-02.toml"]
        # the files are there: refused before running, unless --force
        assert main(["run", url, *args, "--save", str(base)]) == 2
        assert "run-01.toml already exists (use --force to overwrite)" in capsys.readouterr().err
    capsys.readouterr()
    code = main(["compare", str(base), "--", str(new)])
    out = capsys.readouterr().out
    assert "2 vs 2 run(s)" in out and code in (0, 3, 4)  # the verdict is the noise's to say
    assert out.count("run-0") == 2 and out.count("replay-0") == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "error: --repeat: expected --save DIR for the sessions of the runs"),
        (["--save", "x.toml"], "error: --save: expected a directory with --repeat, got the file"),
        (["--save", "d", "--json", "r.json"], "error: --json: expected one run; with --repeat"),
    ],
)
def test_repeat_refuses_what_it_cannot_keep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    extra = [str(tmp_path / e) if e in ("x.toml", "d", "r.json") else e for e in extra]
    assert main(["run", "http://127.0.0.1:9/", "--repeat", "3", *extra]) == 2
    assert capsys.readouterr().err.startswith(message)


def test_a_run_from_the_command_line_keeps_its_host_noise(tmp_path: Path) -> None:
    with ServerThread(service_app(0.001)) as server:
        path = tmp_path / "run.toml"
        args = ["--users", "1", "--duration", "0.5s", "--quiet", "--save", str(path)]
        assert main(["run", f"{server.url}/work", *args]) == 0
    noise = load_session(path).host.noise
    assert noise is not None and 0.0 <= noise.other_cpu_percent <= 100.0
    assert noise.seconds >= 0.5
