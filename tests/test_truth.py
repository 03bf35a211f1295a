"""Truth at the generator's limit: bounded connections, nothing lost, redirects counted,
stuck workers seen, no data never passes. Every test sends real HTTP to a server it
started on 127.0.0.1 and compares what that server received with what we counted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
from aiohttp import web
from conftest import ServerThread
from faults import FaultServer, refused_url
from test_engine import assert_counted_once, make_plan
from test_ui_support import sample_snapshot
from waiting import OutputLines, eventually, until
from yarl import URL

from stressdeck.cli import main
from stressdeck.core.errors import InputError
from stressdeck.engine import build_plan, start
from stressdeck.engine.cpu import MIN_SPAN, CpuMeter
from stressdeck.engine.lanes import Backlog
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.runner import STOP_DEADLINE
from stressdeck.engine.snapshot import STOPPED, TimelinePoint
from stressdeck.profiles.profile import parse_profile
from stressdeck.profiles.thresholds import ThresholdResult
from stressdeck.sessions.summary import progress_line
from stressdeck.ui.widgets.header import RunInfo, header_text

HITS = web.AppKey("hits", Counter)


async def settled(server: FaultServer, path: str) -> int:
    """The server's count on ``path`` once it has read what is already on its sockets (it
    runs on a thread of this busy process, so it may read the last requests a little late)."""
    await eventually(lambda: server.unread() == 0, what="the server has read what was sent")
    return server.seen(path)


def redirect_app() -> web.Application:
    """/r answers 302 to /ok; /loop redirects to itself; /far to a host outside the plan."""
    app = web.Application()
    hits: Counter[str] = Counter()

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        hits[request.path] += 1
        return await handler(request)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/ok")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def far(request: web.Request) -> web.Response:
        # Never followed (the test checks the refusal); a .invalid name never resolves either.
        raise web.HTTPFound("http://far.invalid/elsewhere")

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def big(request: web.Request) -> web.Response:
        # 300 kB on which "(a|aa)+$" backtracks catastrophically (the "!" makes it fail).
        return web.Response(text="a" * 300_000 + "!")

    app.middlewares.append(count)
    app.router.add_get("/r", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/far", far)
    app.router.add_get("/ok", ok)
    app.router.add_get("/big", big)
    app[HITS] = hits
    return app


# -- bounded connections -------------------------------------------------------------------


async def test_open_model_never_opens_more_connections_than_configured() -> None:
    """Far above what 2 connections carry (each answer takes 5 ms: 400/s at most): the excess
    is dropped, never an error, and the server sees exactly 2 connections and exactly the
    requests we counted."""
    with FaultServer() as server:
        plan = make_plan(
            server.url,
            [{"name": "ok", "path": "/slow"}],
            model="open",
            rate=3000,
            connections=2,
            max_in_flight=20,
            duration="1.5s",
        )
        final = await (await start(plan)).wait()
        counted = final.total.requests + final.total.cancelled
        assert await settled(server, "/slow") == counted
        assert server.connections == 2
    assert final.total.errors == 0
    assert final.total.dropped > 0
    assert_counted_once(final)
    due = final.total.requests + final.total.cancelled + final.total.dropped
    assert due == pytest.approx(3000 * final.elapsed, rel=0.1)


async def test_never_answering_server_counts_what_it_accepted() -> None:
    """Nothing answers: every request that went out is cancelled at stop, the rest dropped."""
    with FaultServer() as server:
        plan = make_plan(
            server.url,
            [{"name": "hang", "path": "/hang"}],
            model="open",
            rate=500,
            connections=4,
            duration="1.5s",
        )
        final = await (await start(plan)).wait()
        assert await settled(server, "/hang") == 4
        assert server.connections == 4
    assert final.total.requests == 0
    assert final.total.cancelled == 4
    # Due while the run ran its 1.5 s (not while it stopped, which a loaded machine stretches).
    assert final.total.dropped == pytest.approx(500 * 1.5 - 4, rel=0.1)
    assert final.health.unaccounted == 0
    assert final.stop_reason == "duration reached"


async def test_timeouts_count_only_the_wire_and_match_the_server() -> None:
    """A request's timeout runs from its send: waiting for a lane is lateness, never a timeout."""
    with FaultServer() as server:
        plan = make_plan(
            server.url,
            [{"name": "hang", "path": "/hang", "timeout": "0.3s"}],
            model="open",
            rate=200,
            connections=3,
            duration="2s",
        )
        final = await (await start(plan)).wait()
        errors = final.total.error_counts
        # A timeout before the request was written (a starved loop) is a connect error: it
        # never reached the server.
        sent = final.total.requests - errors.get("connect", 0) + final.total.cancelled
        seen = await settled(server, "/hang")
    assert set(errors) <= {"timeout", "connect"} and errors["timeout"] > errors.get("connect", 0)
    assert seen == sent
    # Three lanes, each one request per 0.3 s: about 6 timeouts per lane in 2 s, not 200/s.
    assert final.total.requests <= 3 * (2 / 0.3 + 1)
    assert final.total.latency_ms.count == 0


def test_backlog_bounds_what_is_in_flight() -> None:
    backlog = Backlog(limit=3)
    assert [backlog.offer(float(i), 0) for i in range(5)] == [True, True, True, False, False]
    assert backlog.in_flight == 3
    assert backlog.clear() == [(0.0, 0), (1.0, 0), (2.0, 0)]
    assert backlog.in_flight == 0


# -- redirects -----------------------------------------------------------------------------


@pytest.mark.parametrize("follow", [False, True])
async def test_redirects_are_counted_hop_by_hop(follow: bool) -> None:
    with ServerThread(redirect_app()) as server:
        endpoint: dict[str, Any] = {"name": "r", "path": "/r", "expect": [200] if follow else [302]}
        if follow:
            endpoint["follow_redirects"] = True
        # The profile's rate is the open model's; --model closed runs 2 users instead.
        document = {"name": "test", "base_url": server.url, "endpoints": [endpoint]}
        document["load"] = {"model": "open", "rate": 200, "users": 2, "requests": 20}
        plan = build_plan(
            parse_profile(document, "test.toml"), Overrides(model="closed"), max_duration=30.0
        )
        final = await (await start(plan)).wait()
        hits = server.app[HITS]
    assert sum(hits.values()) == final.total.requests
    assert final.total.errors == 0
    if follow:
        assert hits == {"/r": 20, "/ok": 20}
        assert final.total.status_counts == {200: 20, 302: 20}
    else:
        assert hits == {"/r": 20}
        assert final.total.status_counts == {302: 20}
    # A closed run keeps no rate in its timeline, even when the profile sets one.
    assert (plan.load.model, plan.load.users) == ("closed", 2)
    assert all(point.rate is None for point in final.timeline)


async def test_redirects_stop_at_the_plan_hosts_and_after_ten_hops() -> None:
    with ServerThread(redirect_app()) as server:
        finals = []
        for path in ("/far", "/loop"):
            endpoint = {"name": path[1:], "path": path, "follow_redirects": True}
            plan = make_plan(server.url, [endpoint], users=1, requests=1)
            finals.append(await (await start(plan)).wait())
        hits = server.app[HITS]
    far, loop = (final.total for final in finals)
    assert far.requests == 1 and far.status_counts == {302: 1} and hits["/far"] == 1
    assert far.skip_reasons == {"redirect to far.invalid not followed (not allowed)": 1}
    assert loop.requests == 11 and hits["/loop"] == 11
    assert loop.skip_reasons == {"more than 10 redirects": 1}


@pytest.mark.parametrize(
    ("base", "location", "allowed"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:9/x", True),
        ("http://127.0.0.1:8080", "http://localhost/x", True),  # loopback stays loopback
        ("http://127.0.0.1:8080", "http://example.com/", False),
        ("http://127.0.0.1:8080", "http://127.0.0.1@example.com/", False),
        ("http://127.0.0.1:8080", "ftp://127.0.0.1/", False),
        ("https://api.example.com", "https://api.example.com/v2", True),
        ("https://api.example.com", "http://localhost/", False),
        ("https://api.example.com", "https://evil.example.net/", False),
    ],
)
def test_redirect_consent(base: str, location: str, allowed: bool) -> None:
    plan = make_plan(base, [{"name": "a", "path": "/a"}])
    assert plan.requests[0].redirect_allowed(URL(location)) is allowed


def test_follow_redirects_and_connections_are_validated() -> None:
    base = {
        "name": "p",
        "base_url": "http://127.0.0.1:1",
        "endpoints": [{"name": "a", "path": "/"}],
    }
    for document, field in [
        ({**base, "load": {"connections": 0}}, "load.connections"),
        ({**base, "load": {"connections": 2.5}}, "load.connections"),
        ({**base, "defaults": {"follow_redirects": "yes"}}, "defaults.follow_redirects"),
        (
            {**base, "endpoints": [{"name": "a", "path": "/", "follow_redirects": 1}]},
            "endpoints[0].follow_redirects",
        ),
    ]:
        with pytest.raises(InputError) as caught:
            parse_profile(document, "p.toml")
        assert caught.value.field == field
    profile = parse_profile({**base, "defaults": {"follow_redirects": True}}, "p.toml")
    assert profile.follow_redirects is True


# -- no data never passes ------------------------------------------------------------------


def test_dead_port_with_a_latency_threshold_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "dead.toml"
    profile.write_text(
        f'name = "dead"\nbase_url = "{refused_url()}"\nthresholds = ["p95 < 500ms"]\n'
        '[[endpoints]]\nname = "a"\npath = "/"\n'
    )
    session, junit = tmp_path / "s.json", tmp_path / "j.xml"
    code = main(
        ["run", str(profile), "--duration", "1s", "--processes", "1", "--quiet"]
        + ["--save", str(session)]
    )
    out = capsys.readouterr().out
    assert code == 3
    assert "p95 < 500ms" in out and "no data" in out and "FAIL" in out
    assert "n/a" in out  # latencies of a run where everything failed
    saved = json.loads(session.read_text())["results"]["thresholds"]
    assert [(t["expr"], t["ok"], t.get("value")) for t in saved] == [("p95 < 500ms", False, None)]
    assert main(["report", str(session), "--junit", str(junit)]) == 0
    assert 'failures="1"' in junit.read_text() and "no data" in junit.read_text()


# -- stuck workers -------------------------------------------------------------------------


async def test_catastrophic_regex_extractor_ends_on_time_and_says_so() -> None:
    with ServerThread(redirect_app()) as server:
        plan = make_plan(
            server.url,
            [{"name": "big", "path": "/big", "extract": {"token": "regex:(a|aa)+$"}}],
            users=2,
            duration="2s",
        )
        handle = await start(plan)
        started = time.monotonic()
        final = await handle.wait()
        took = time.monotonic() - started
    assert took < 2 + STOP_DEADLINE + 1.0
    assert final.stop_reason == "duration reached"
    assert final.total.requests > 0
    (reason, failures), *_ = final.total.extract_failures.items()
    assert reason.startswith("token: regex gave up after 50 ms on a 300001-byte body")
    assert failures == final.total.status_counts[200]


@pytest.mark.slow
async def test_a_stopped_worker_is_reported_stalled_and_the_run_still_stops() -> None:
    """SIGSTOP one of two worker processes: it shows as stalled within a few ticks, and a
    stop still returns within its deadline, the worker killed and said so."""
    with FaultServer() as server:
        plan = make_plan(
            server.url,
            [{"name": "ok", "path": "/ok"}],
            model="open",
            rate=200,
            connections=4,
            duration="30s",
        )
        handle = await start(plan, processes=2)
        frozen = handle._workers[1].pid  # type: ignore[attr-defined]
        assert frozen is not None
        # Only a worker the runner has heard from can be seen to fall silent.
        await eventually(
            lambda: handle._book.record(1).report is not None, what="worker 1 has reported"
        )
        os.kill(frozen, signal.SIGSTOP)
        try:
            async with asyncio.timeout(5):
                async for snapshot in handle.snapshots():
                    if snapshot.stalled == (1,):
                        break
            assert snapshot.health.stalled_workers == 1
            asked = time.monotonic()
            final = await handle.stop()
            took = time.monotonic() - asked
        finally:
            if psutil.pid_exists(frozen):
                os.kill(frozen, signal.SIGKILL)
        seen = await settled(server, "/ok")
    assert took < 1.0
    assert not psutil.pid_exists(frozen) or psutil.Process(frozen).status() == "zombie"
    assert "worker 1 stalled and was ended at stop" in final.stop_reason
    assert f"{final.health.unaccounted} requests unaccounted" in final.stop_reason
    assert final.health.stalled_seconds > 0
    # What the live worker sent is all counted; the frozen one's last moments are unknown.
    counted = final.total.requests + final.total.cancelled
    assert counted <= seen <= counted + final.health.unaccounted + 200 * plan.tick


# -- what the header, the progress line and the CPU meter say ------------------------------


def test_the_header_says_no_data_and_names_a_stalled_worker() -> None:
    pending = ThresholdResult("p95 < 500ms", None, None, True)
    measured = ThresholdResult("error_rate < 1%", None, 0.0, True)
    live = sample_snapshot(thresholds=(pending, measured), stalled=(1,))
    text = header_text(live, RunInfo("p")).plain
    assert "✔ thresholds 1/2 pass, 1 no data yet" in text
    assert "⚠ worker 1 stalled" in text
    failed = ThresholdResult("p95 < 500ms", None, None, False)  # the final verdict
    done = sample_snapshot(thresholds=(failed,), state=STOPPED)
    assert "✘ 1/1 thresholds fail: p95 < 500ms (no data)" in header_text(done, RunInfo("p")).plain


def test_the_progress_line_is_labelled_with_the_second_it_shows() -> None:
    # Second 3: five requests, all transport errors, so no latency (None: no data).
    point = TimelinePoint(
        t=3.0, span=1.0, requests=5, rps=5.0, errors=5, p50=None, p95=None, p99=None, users=2
    )
    line = progress_line(sample_snapshot(elapsed=3.6, timeline=(point,)))
    assert line.startswith("[   3.0s]")
    assert "p50     n/a  p95     n/a  p99     n/a ms" in line
    assert line.endswith("errors 5 (100.00%)")  # the second's, not the run's so far


def test_cpu_over_a_few_milliseconds_is_not_read_as_hundreds_of_percent() -> None:
    meter = CpuMeter()
    busy_until = time.perf_counter() + 0.02
    while time.perf_counter() < busy_until:
        pass  # 20 ms of CPU: one or two 10 ms clock ticks, 50-100 % or more over 20 ms
    assert meter.sample() == 0.0  # too short a span to judge: the last figure, not a spike
    time.sleep(MIN_SPAN)
    assert 0.0 <= meter.sample() <= 100.0 * (os.cpu_count() or 1)


@pytest.mark.slow
def test_sigterm_ends_a_run_within_a_second_with_a_stopped_worker(tmp_path: Path) -> None:
    """`stressdeck run` with one of its two worker processes SIGSTOPped: SIGTERM still ends
    it at once, with what was measured, and it says which worker it had to end."""
    with FaultServer() as server:
        profile = tmp_path / "p.toml"
        profile.write_text(
            f'name = "p"\nbase_url = "{server.url}"\n[[endpoints]]\nname = "ok"\npath = "/ok"\n'
        )
        argv = [sys.executable, "-m", "stressdeck", "run", str(profile), "--model", "open"]
        argv += ["--rate", "100", "--duration", "30s", "--processes", "2"]
        run = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
        frozen = None
        try:
            lines = OutputLines(run.stdout)
            until(lambda: server.seen("/ok") >= 50, timeout=30, what="50 requests received")
            workers = [
                child
                for child in psutil.Process(run.pid).children()
                if "resource_tracker" not in " ".join(child.cmdline())
            ]
            assert len(workers) == 2
            frozen = workers[-1].pid
            os.kill(frozen, signal.SIGSTOP)
            # Past the stall threshold (4 ticks): the progress line names the stalled worker.
            lines.wait_for("STALLED worker", timeout=10)
            printed = len(lines.lines)
            asked = time.monotonic()
            run.send_signal(signal.SIGTERM)
            lines.wait_for(r"^[^\[]", timeout=10, after=printed)  # the summary, not progress
            took = time.monotonic() - asked
            out = lines.text()
            run.wait(10)
        finally:
            if run.poll() is None:
                run.kill()
            if frozen is not None and psutil.pid_exists(frozen):
                os.kill(frozen, signal.SIGKILL)
    assert run.returncode == 130
    # The stop is bounded by STOP_DEADLINE (the stopped worker is killed at it); then the
    # summary is printed. Saving the session and the interpreter's exit come after.
    assert took < 1.5, took
    assert "stalled and was ended at stop" in out
    assert "partial session saved" in out
