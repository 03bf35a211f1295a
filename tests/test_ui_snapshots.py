"""Layout snapshots of the dashboard at fixed sizes, fed one fixed Snapshot and a fixed host
sample, so nothing in the picture depends on time or on this machine.

Regenerate after an intended layout change with ``pytest tests/test_ui_snapshots.py
--snapshot-update`` and look at the SVGs under tests/__snapshots__/ before committing.
"""

from __future__ import annotations

from dataclasses import replace

from test_ui_support import FixedMonitor, sample_snapshot, sample_target_metrics

from stressdeck.engine.snapshot import STOPPED
from stressdeck.ui.app import StressDeckApp


def static_app(**changes: object) -> StressDeckApp:
    return StressDeckApp(
        static_snapshot=sample_snapshot(**changes), static_title="Demo mix", monitor=FixedMonitor()
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
