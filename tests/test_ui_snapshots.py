"""Layout snapshots of the dashboard at fixed sizes, fed one fixed Snapshot and a fixed host
sample, so nothing in the picture depends on time or on this machine.

Regenerate after an intended layout change with ``pytest tests/test_ui_snapshots.py
--snapshot-update`` and look at the SVGs under tests/__snapshots__/ before committing.
"""

from __future__ import annotations

from dataclasses import replace

from test_ui_support import FixedMonitor, sample_snapshot, sample_target_metrics

from stressdeck.engine.snapshot import STOPPED, ControlEvent
from stressdeck.ui.app import StressDeckApp
from stressdeck.ui.options import ConsoleOptions


def static_app(**changes: object) -> StressDeckApp:
    return StressDeckApp(
        options=ConsoleOptions(
            static_snapshot=sample_snapshot(**changes),
            static_title="Demo mix",
            monitor=FixedMonitor(),
        )
    )


def test_dashboard_80x24_overview(snap_compare) -> None:
    assert snap_compare(static_app(), terminal_size=(80, 24))


def test_dashboard_80x24_endpoints(snap_compare) -> None:
    assert snap_compare(static_app(), terminal_size=(80, 24), press=["2"])


def test_dashboard_80x24_endpoints_streaming(snap_compare) -> None:
    plain, chunked, sse = sample_snapshot().endpoints
    endpoints = (
        plain,
        replace(chunked, chunks=10_240, bytes=6_144_000),
        replace(sse, events=40_960, chunks=40_960),
    )
    assert snap_compare(static_app(endpoints=endpoints), terminal_size=(80, 24), press=["2"])


def test_dashboard_80x24_charts(snap_compare) -> None:
    assert snap_compare(static_app(), terminal_size=(80, 24), press=["3"])


def test_dashboard_80x24_target_metrics_last_scrape_failed(snap_compare) -> None:
    app = static_app(target_metrics=sample_target_metrics(fail_last=True))
    assert snap_compare(app, terminal_size=(80, 24), press=["6"])


def test_dashboard_80x24_host(snap_compare) -> None:
    assert snap_compare(static_app(), terminal_size=(80, 24), press=["4"])


def test_dashboard_160x48_every_pane(snap_compare) -> None:
    assert snap_compare(static_app(), terminal_size=(160, 48))


def test_dashboard_160x48_stopped_recent_histogram(snap_compare) -> None:
    app = static_app(state=STOPPED, stop_reason="duration reached")
    assert snap_compare(app, terminal_size=(160, 48), press=["h"])


def failing_target_snapshot() -> dict[str, object]:
    """A run against a target that went away 20 s in: connect errors from then on."""
    base = sample_snapshot()
    refused = "connect: Connection refused"
    long_text = (
        "disconnect: Response payload is not completed: <ContentLengthError: 400, message="
        "'Not enough data to satisfy content length header.'>"
    )
    total = replace(
        base.total,
        requests=base.total.requests + 9000,
        errors=base.total.errors + 9000,
        error_rate=(base.total.errors + 9000) / (base.total.requests + 9000),
        error_counts={"connect": 8990, "disconnect": 10, "timeout": 44},
        error_messages={refused: 8990, long_text: 10, **base.total.error_messages},
    )
    timeline = tuple(
        replace(p, errors=p.requests, p50=0.0, p95=0.0, p99=0.0) if p.t > 20 else p
        for p in base.timeline
    )
    return {"total": total, "timeline": timeline}


def test_dashboard_80x24_overview_failing_target(snap_compare) -> None:
    """Top error messages with counts, wrapped, not cut."""
    assert snap_compare(static_app(**failing_target_snapshot()), terminal_size=(80, 24))


def test_dashboard_80x24_charts_open_model_with_rate_changes(snap_compare) -> None:
    """The load chart: asked rate on the right axis, live changes marked."""
    base = sample_snapshot()
    timeline = tuple(
        replace(p, users=0, rate=200.0 if p.t < 10 else 300.0 if p.t < 20 else 500.0)
        for p in base.timeline
    )
    control = (ControlEvent(10.0, "rate", 300.0), ControlEvent(20.0, "rate", 500.0))
    app = static_app(model="open", rate=500.0, timeline=timeline, control_log=control)
    assert snap_compare(app, terminal_size=(80, 24), press=["3"])


def test_dashboard_200x50_target_metrics_chart_is_whole(snap_compare) -> None:
    app = static_app(target_metrics=sample_target_metrics())
    assert snap_compare(app, terminal_size=(200, 50))
