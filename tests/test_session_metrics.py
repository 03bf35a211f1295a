"""Sessions keep the target's metrics and the generator's health; a saved run rebuilds its snapshot."""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).parent))
from conftest import ServerThread
from session_support import crafted_document, profile_document, run_sync
from test_report import parse

from stressdeck.cli import main
from stressdeck.engine import Plan, Snapshot
from stressdeck.engine.snapshot import PERCENTILE_KEYS, STOPPED, GeneratorHealth
from stressdeck.observe.metrics import MetricsSnapshot
from stressdeck.sessions.exports import write_html
from stressdeck.sessions.session import (
    FORMAT_VERSION,
    build_session,
    dumps_session,
    load_session,
    save_session,
    session_from_document,
    snapshot_from_session,
)
from stressdeck.sessions.summary import summary_text

SERIES = ["app_requests_total", "app_weird"]


def metrics_app() -> web.Application:
    """/ok and /status/N as the target; /metrics in the Prometheus text format.

    The second scrape answers 500, so every saved run holds a scrape failure; ``app_weird``
    reads +Inf, a legal Prometheus value that a session cannot hold as a number.
    """
    state = {"requests": 0, "scrapes": 0}

    async def ok(request: web.Request) -> web.Response:
        state["requests"] += 1
        return web.Response(text="ok")

    async def status(request: web.Request) -> web.Response:
        state["requests"] += 1
        return web.Response(status=int(request.match_info["code"]), text="status")

    async def metrics(request: web.Request) -> web.Response:
        state["scrapes"] += 1
        if state["scrapes"] == 2:
            return web.Response(status=500, text="metrics backend down")
        return web.Response(
            text="# TYPE app_requests_total counter\n"
            f"app_requests_total {state['requests']}\n"
            "# TYPE app_weird gauge\napp_weird +Inf\n"
        )

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/metrics", metrics)
    return app


@pytest.fixture(scope="module")
def run() -> Iterator[tuple[Plan, Snapshot]]:
    """A real 3.5 s run scraping the target once a second: about four scrapes, one failed."""
    with ServerThread(metrics_app()) as server:
        document = profile_document(
            server.url, duration="3500ms", metrics_url="/metrics", metrics=SERIES
        )
        changes = [(0.8, lambda h: h.set_users(3))]
        yield run_sync(document, changes, users=2)


def _rounded(metrics: MetricsSnapshot) -> MetricsSnapshot:
    """What a session holds: times to the millisecond (as in --json), +Inf as no value."""

    def points(items):  # type: ignore[no-untyped-def]
        return tuple(
            replace(p, t=round(p.t, 3))
            if p.value is None or abs(p.value) != float("inf")
            else replace(p, t=round(p.t, 3), value=None, error="not a finite number (inf)")
            for p in items
        )

    return replace(
        metrics,
        t=round(metrics.t, 3),
        scrape_points=points(metrics.scrape_points),
        series=tuple(replace(s, points=points(s.points)) for s in metrics.series),
    )


def test_the_run_scraped_and_failed_once(run: tuple[Plan, Snapshot]) -> None:
    _, snapshot = run
    metrics = snapshot.target_metrics
    assert metrics is not None and metrics.scrapes >= 3 and metrics.failures == 1
    assert metrics.last_error == f"HTTP 500 from {metrics.url}"
    rates = [v for v in metrics.get("app_requests_total").values() if v is not None]
    assert rates and all(v > 0 for v in rates)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_target_metrics_and_health_round_trip(
    run: tuple[Plan, Snapshot], tmp_path: Path, suffix: str
) -> None:
    plan, snapshot = run
    path = save_session(tmp_path / f"s{suffix}", plan, snapshot)
    loaded = load_session(path)
    assert replace(loaded, created="") == replace(build_session(plan, snapshot), created="")
    assert dumps_session(loaded, suffix) == path.read_text()
    assert loaded.format_version == FORMAT_VERSION == 3
    assert loaded.results.generator == snapshot.health
    assert loaded.results.generator.processes == 1
    assert loaded.results.generator.peak_cpu_percent >= loaded.results.generator.cpu_percent
    assert snapshot.target_metrics is not None
    metrics = loaded.results.target_metrics
    assert metrics == _rounded(snapshot.target_metrics)
    assert metrics.url == snapshot.target_metrics.url and metrics.failures == 1
    failed = [p for p in metrics.scrape_points if not p.ok]
    assert len(failed) == 1 and failed[0].value is None and failed[0].error == metrics.last_error
    requests = metrics.get("app_requests_total")
    assert requests is not None and requests.kind == "rate" and requests.unit == "/s"
    assert [p.ok for p in requests.points] == [
        p.ok for p in snapshot.target_metrics.get("app_requests_total").points
    ]
    weird = metrics.get("app_weird")
    assert weird is not None and all(p.value is None for p in weird.points)
    assert {p.error for p in weird.points if p.ok} == {"not a finite number (inf)"}


def test_the_json_and_toml_sessions_hold_the_same_schema(
    run: tuple[Plan, Snapshot], tmp_path: Path
) -> None:
    plan, snapshot = run
    session = build_session(plan, snapshot)
    toml = load_session(save_session(tmp_path / "s.toml", plan, snapshot))
    as_json = load_session(save_session(tmp_path / "s.json", plan, snapshot))
    assert replace(toml, created="") == replace(as_json, created="") == replace(session, created="")


def test_a_format_1_session_still_loads_with_health_not_recorded(tmp_path: Path) -> None:
    session = session_from_document(crafted_document(), "old.toml")
    assert session.format_version == 1 and session.results.target_metrics is None
    assert session.results.generator == GeneratorHealth(
        loop_lag_ms=0.5, send_lag_ms=0.1, cpu_percent=12.0
    )
    out = io.StringIO()
    write_html(session, out)
    html = out.getvalue()
    assert (
        "the whole-run peaks were not recorded" in html and "No target metrics were scraped" in html
    )
    assert parse(html).errors == []


def test_a_bad_target_metrics_table_is_one_line_naming_the_field(
    run: tuple[Plan, Snapshot],
) -> None:
    from stressdeck.core.errors import InputError
    from stressdeck.sessions.session import session_to_document

    plan, snapshot = run
    document = session_to_document(build_session(plan, snapshot))
    document["results"]["target_metrics"]["series"][0]["points"][1]["value"] = "fast"
    with pytest.raises(InputError) as info:
        session_from_document(document, "bad.json")
    line = info.value.line()
    assert line.startswith(
        "bad.json: results.target_metrics.series[0].points[1].value: expected a number"
    )
    assert "\n" not in line


def test_the_html_report_charts_the_target_series_and_shows_health(
    run: tuple[Plan, Snapshot],
) -> None:
    plan, snapshot = run
    session = build_session(plan, snapshot)
    out = io.StringIO()
    write_html(session, out)
    html = out.getvalue()
    parser = parse(html)
    assert parser.errors == [] and parser.loading == []
    assert "http://" not in html and "https://" not in html
    # Three run charts, three per-endpoint charts, one target chart: app_weird never had a
    # value to draw.
    assert parser.tags.count("svg") == 7
    text = " ".join(parser.text)
    assert "Target: app_requests_total" in text and "Target: app_weird" not in text
    assert re.search(r"\d+ scrapes of .*/metrics, 1 failed; last error: HTTP 500", text)
    for label in ("saturated", "peak loop lag", "peak send lag", "peak CPU", "processes"):
        assert label in text
    assert "not recorded" not in text


def test_snapshot_from_session_rebuilds_the_final_snapshot(
    run: tuple[Plan, Snapshot], tmp_path: Path
) -> None:
    plan, snapshot = run
    session = load_session(save_session(tmp_path / "s.toml", plan, snapshot))
    rebuilt = snapshot_from_session(session)
    saved = session.results
    assert rebuilt.state == STOPPED and rebuilt.finished and rebuilt.elapsed == saved.elapsed
    assert rebuilt.stop_reason == snapshot.stop_reason == "duration reached"
    assert (rebuilt.model, rebuilt.target, rebuilt.users) == (snapshot.model, snapshot.target, 3)
    for original, again, kept in [
        (snapshot.total, rebuilt.total, saved.total),
        *zip(snapshot.endpoints, rebuilt.endpoints, saved.endpoints, strict=True),
    ]:
        assert again.name == original.name == kept.name
        assert (again.requests, again.errors, again.bytes) == (
            original.requests,
            original.errors,
            original.bytes,
        )
        assert (
            again.status_counts == original.status_counts
            and again.error_counts == original.error_counts
        )
        assert again.rps == kept.rps == round(original.rps, 3)
        for kind in ("latency_ms", "service_ms", "ttfb_ms"):
            for key in PERCENTILE_KEYS:
                assert (
                    getattr(getattr(again, kind), key)
                    == getattr(getattr(kept, kind), key)
                    == round(getattr(getattr(original, kind), key), 3)
                )
        # The count is not written: it comes from the saved HDR histogram.
        assert again.latency_ms.count == original.latency_ms.count > 0
    # The timeline as saved: rates to a thousandth, as in --json.
    assert rebuilt.timeline == tuple(replace(p, rps=round(p.rps, 3)) for p in snapshot.timeline)
    assert rebuilt.control_log == snapshot.control_log
    assert rebuilt.thresholds == snapshot.thresholds and rebuilt.thresholds_ok
    assert rebuilt.health == snapshot.health
    assert rebuilt.histograms == snapshot.histograms
    assert rebuilt.latency_buckets == snapshot.latency_buckets != ()
    assert rebuilt.target_metrics == session.results.target_metrics
    assert "TOTAL" in summary_text(rebuilt)


def test_snapshot_from_an_old_session_without_histograms(tmp_path: Path) -> None:
    session = session_from_document(crafted_document(), "old.toml")
    rebuilt = snapshot_from_session(session)
    assert rebuilt.total.requests == 1000 and rebuilt.total.status_counts == {200: 1000, 500: 0}
    # No histogram: the count is the answers counted (one time recorded per answer).
    assert rebuilt.total.latency_ms.p95 == 20.0 and rebuilt.total.latency_ms.count == 1000
    assert rebuilt.latency_buckets == () and rebuilt.target_metrics is None
    assert rebuilt.users == 5 and rebuilt.rate is None
    assert "TOTAL" in summary_text(rebuilt)


def test_cli_run_with_a_metrics_url_saves_and_redacts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ServerThread(metrics_app()) as server:
        profile = tmp_path / "p.toml"
        profile.write_text(
            f'name = "p"\nbase_url = "{server.url}"\n[[endpoints]]\nname = "ok"\npath = "/ok"\n'
        )
        # A password in the metrics URL is sent (aiohttp turns it into basic auth) but never saved.
        metrics_url = server.url.replace("://", "://scraper:hunter2@") + "/metrics"
        saved = tmp_path / "s.json"
        assert (
            main(
                [
                    "run",
                    str(profile),
                    "--duration",
                    "2500ms",
                    "--users",
                    "2",
                    "--quiet",
                    "--processes",
                    "1",
                    "--metrics-url",
                    metrics_url,
                    "--metric",
                    "app_requests_total",
                    "--save",
                    str(saved),
                ]
            )
            == 0
        )
        session = load_session(saved)
        assert session.plan.overrides.metrics == ("app_requests_total",)
        assert (
            session.plan.overrides.metrics_url
            == server.url.replace("://", "://<redacted>@") + "/metrics"
        )
        assert session.results.target_metrics is not None
        assert session.results.target_metrics.url == session.plan.overrides.metrics_url
        assert "hunter2" not in saved.read_text()
        assert (
            session.results.target_metrics.last_error
            == f"HTTP 500 from {session.plan.overrides.metrics_url}"
        )
        assert "target metrics:" in capsys.readouterr().out


def test_a_replay_scrapes_the_saved_metrics_url_again(tmp_path: Path) -> None:
    with ServerThread(metrics_app()) as server:
        profile = tmp_path / "p.toml"
        profile.write_text(
            f'name = "p"\nbase_url = "{server.url}"\n[[endpoints]]\nname = "ok"\npath = "/ok"\n'
        )
        first, again = tmp_path / "first.toml", tmp_path / "again.json"
        assert (
            main(
                [
                    "run",
                    str(profile),
                    "--duration",
                    "1500ms",
                    "--users",
                    "1",
                    "--quiet",
                    "--processes",
                    "1",
                    "--metrics-url",
                    f"{server.url}/metrics",
                    "--metric",
                    "app_requests_total",
                    "--save",
                    str(first),
                ]
            )
            == 0
        )
        assert (
            main(["replay", str(first), "--quiet", "--processes", "1", "--save", str(again)]) == 0
        )
    replayed = load_session(again)
    assert replayed.replay_of == str(first)
    assert replayed.plan.overrides == load_session(first).plan.overrides
    metrics = replayed.results.target_metrics
    assert (
        metrics is not None
        and metrics.scrapes >= 2
        and [s.spec for s in metrics.series] == ["app_requests_total"]
    )


def test_percentiles_an_older_file_lacks_come_from_its_histograms(
    run: tuple[Plan, Snapshot], tmp_path: Path
) -> None:
    """Format 1 files kept three ttfb percentiles; the rest are read from the saved HDR."""
    plan, snapshot = run
    path = save_session(tmp_path / "s.json", plan, snapshot)
    document = json.loads(path.read_text())
    ttfb = document["results"]["summary"]["total"]["ttfb_ms"]
    document["results"]["summary"]["total"]["ttfb_ms"] = {k: ttfb[k] for k in ("p50", "p95", "p99")}
    older = tmp_path / "older.json"
    older.write_text(json.dumps(document))
    total = load_session(older).results.total
    assert total.ttfb_ms.p95 == ttfb["p95"]
    assert total.ttfb_ms.p90 == snapshot.total.ttfb_ms.p90 > 0  # exact, from the histogram
    assert total.ttfb_ms.max == snapshot.total.ttfb_ms.max
