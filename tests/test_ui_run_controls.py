"""The console at 80x24, keyboard only: the run's duration, the header once a run stopped,
and endpoint names that do not push the figures off screen. Real runs against a server on
127.0.0.1, what the screen shows asserted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from test_ui_support import (
    FixedMonitor,
    console,
    sample_snapshot,
    screen_text,
    start,
    wait_for,
    write_profile,
)

from stressdeck.engine.snapshot import STOPPED
from stressdeck.ui.app import StressDeckApp
from stressdeck.ui.options import ConsoleOptions
from stressdeck.ui.screens.dialogs import DurationScreen, parse_run_duration
from stressdeck.ui.widgets.tables import COLUMNS, EndpointTable

SIZE = (80, 24)


@pytest.mark.parametrize(
    ("typed", "seconds"),
    [("90s", 90.0), ("2m", 120.0), ("1h", 3600.0), ("1:30", 90.0), ("45", 45.0), (" 10s ", 10.0)],
)
def test_a_typed_duration_reads_as_the_cli_and_the_header_write_it(
    typed: str, seconds: float
) -> None:
    assert parse_run_duration(typed) == seconds


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("soon", "expected a duration"),
        ("", "expected a duration"),
        ("1:xx", "expected a duration"),
        ("0.5s", "at least 1 s"),
        ("-5", "expected a duration"),
        ("inf", "expected a duration"),
    ],
)
def test_a_bad_duration_says_why(typed: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_run_duration(typed)


async def test_d_sets_the_next_runs_duration_from_the_keyboard(tmp_path: Path, target) -> None:
    profile = write_profile(tmp_path, target.url, duration="30s")
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        assert "0:00 / 0:30" in screen_text(app)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DurationScreen))
        await pilot.press("s", "o", "o", "n", "enter")  # not a duration: said, nothing changed
        await wait_for(pilot, lambda: "expected a duration" in screen_text(app))
        assert isinstance(app.screen, DurationScreen)
        await pilot.press("ctrl+a", "ctrl+k", *"2m", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, DurationScreen))
        assert app.controller is not None
        assert app.controller.plan.load.duration == 120.0
        await wait_for(pilot, lambda: "0:00 / 2:00" in screen_text(app))
        await start(app, pilot)
        assert app.controller.run_plan is not None
        assert app.controller.run_plan.load.duration == 120.0
        await pilot.press("s")
        await wait_for(
            pilot, lambda: app.controller is not None and app.controller.state == STOPPED
        )


async def test_the_duration_is_also_in_the_command_palette(tmp_path: Path, target) -> None:
    profile = write_profile(tmp_path, target.url)
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("ctrl+p", *"duration")
        await wait_for(pilot, lambda: "Set the run's duration" in screen_text(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DurationScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DurationScreen))
        assert app.controller is not None and app.controller.plan.load.duration == 8.0


async def test_a_stopped_run_has_no_user_active_and_nothing_in_flight(
    tmp_path: Path, target
) -> None:
    # Slow answers: at the stop, every user has a request in flight.
    profile = write_profile(tmp_path, target.url, users=4, duration="60s")
    profile.write_text(
        profile.read_text().replace('path = "/ok"\nthink', 'path = "/slow?ms=300"\nthink', 1)
    )
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await wait_for(pilot, lambda: "(4 active)" in screen_text(app))
        await pilot.press("s")
        assert app.controller is not None
        await wait_for(
            pilot, lambda: app.controller is not None and app.controller.state == STOPPED
        )
        await wait_for(pilot, lambda: " STOPPED " in screen_text(app))
        header = screen_text(app).splitlines()[1]
        assert "users 4 (0 active)" in header, header
        assert "in flight 0" in header or "⇄0" in header, header
        final = app.controller.latest()
        assert final.total.cancelled > 0  # there was something in flight: it is counted here


LONG_NAME = "GET /api/v2/organisations/{organisationId}/projects/{projectId}/items?page=1"


@pytest.mark.parametrize("width", [80, 100])
async def test_a_long_endpoint_name_gives_way_to_the_figures(width: int) -> None:
    snap = sample_snapshot()
    endpoints = list(snap.endpoints)
    endpoints[0] = replace(endpoints[0], name=LONG_NAME, requests=1_234_567)
    snap = replace(snap, endpoints=tuple(endpoints))
    app = StressDeckApp(
        options=ConsoleOptions(static_snapshot=snap, monitor=FixedMonitor(), static_title="t")
    )
    async with app.run_test(size=(width, 24)) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("2")
        table = app.screen.query_one(EndpointTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        text = screen_text(app)
        header = next(line for line in text.splitlines() if line.startswith(" Endpoint"))
        # Every column's title is on screen, the last one whole.
        for _, label in COLUMNS:
            assert label in header, header
        total_line = next(line for line in text.splitlines() if line.startswith(" TOTAL"))
        assert total_line.rstrip().endswith(table.cell_text("total", "ttfb")), total_line
        name = table.cell_text("ep0", "endpoint")
        assert name.endswith("…") and LONG_NAME.startswith(name[:-1]), name
        assert table.cell_text("ep0", "requests") == "1235k"
        assert table.cell_text("ep1", "endpoint") == "create item"  # short names stay whole
