"""The header at 80 columns in every state: state, elapsed / duration, load, RPS, p95,
errors and the preset or stage always show, whatever else gives way. Then the same on a
real console at 80x24 (Pilot), and a dead target said in words."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import faults
import pytest
from test_ui_support import FixedMonitor, sample_snapshot, screen_text, wait_for, write_profile

from stressdeck.engine.overrides import Overrides
from stressdeck.engine.snapshot import IDLE, PAUSED, RUNNING, STOPPED, STOPPING
from stressdeck.ui.app import StressDeckApp
from stressdeck.ui.options import ConsoleOptions
from stressdeck.ui.planning import PlanSource
from stressdeck.ui.widgets.header import RunInfo, fit, header_text

LONG_NAME = "A profile with a rather long name that a team gave it"
LONG_TARGET = "http://127.0.0.1:8765/a/very/long/path/that/goes/on/and/on"


def lines(snap, info: RunInfo, width: int = 78) -> list[str]:
    text = header_text(snap, info, width).plain.splitlines()
    assert all(len(line) <= width for line in text), text
    return text


def must_show(text: str, *parts: str) -> None:
    for part in parts:
        assert part in text, f"{part!r} missing from:\n{text}"


@pytest.mark.parametrize("state", [IDLE, RUNNING, PAUSED, STOPPING, STOPPED])
@pytest.mark.parametrize("model", ["closed", "open"])
def test_every_state_keeps_the_essential_fields_at_80_columns(state: str, model: str) -> None:
    snap = sample_snapshot(
        state=state,
        model=model,
        rate=250.0 if model == "open" else None,
        target=LONG_TARGET,
        stage=1,
        paused_for=65.0 if state == PAUSED else 0.0,
        paused_seconds=65.0 if state == PAUSED else 0.0,
        stop_reason="duration reached" if state == STOPPED else "",
    )
    info = RunInfo(
        LONG_NAME,
        duration=120.0,
        preset="spike",
        stages=3,
        next_load="closed, 10 users, 30s, preset spike" if state in (IDLE, STOPPED) else "",
    )
    shown = "\n".join(lines(snap, info))
    # A stopped run's rate is the whole run's; a paused one sends nothing.
    rps = {STOPPED: "375", PAUSED: "0.0"}.get(state, "426")
    rps = f"actual {rps}/s" if model == "open" else f"{rps} rps"
    must_show(shown, state.upper(), "0:30 / 2:00", rps, "p95 12.0ms", "err 0.56%", "spike")
    must_show(shown, "rate 250/s" if model == "open" else "users 12")
    if state == PAUSED:
        must_show(shown, "paused 1:05")
    if state in (IDLE, STOPPED):
        must_show(shown, "preset spike")  # the next run's preset, not cut off the end
    if state == STOPPED:
        must_show(shown, "duration reached")


def test_the_name_and_target_give_way_first_and_are_cut_visibly() -> None:
    snap = sample_snapshot(target=LONG_TARGET)
    first = lines(snap, RunInfo(LONG_NAME, duration=30.0))[0]
    assert first.endswith("…")
    assert "RUNNING" in first and "0:30 / 0:30" in first
    wide = lines(snap, RunInfo(LONG_NAME, duration=30.0), width=200)[0]
    assert LONG_TARGET in wide and LONG_NAME in wide


def test_a_request_budget_shows_its_progress() -> None:
    snap = sample_snapshot()
    shown = lines(snap, RunInfo("p", requests=20_000))[0]
    must_show(shown, "11,264/20,000 req")


def test_a_failing_threshold_shortens_before_it_goes() -> None:
    text = "\n".join(lines(sample_snapshot(), RunInfo("p", next_load="x" * 70)))
    must_show(text, "✘ 1/2 fail")


def test_fit_keeps_order_and_drops_least_important_first() -> None:
    from rich.text import Text

    from stressdeck.ui.widgets.header import Part

    parts = [Part(Text("aaaa"), 0), Part(Text("bbbb"), 9), Part(Text("cccc"), 1, Text("c"))]
    assert fit(parts, 20).plain == "aaaa  bbbb  cccc"
    assert fit(parts, 13).plain == "aaaa  bbbb  c"
    assert fit(parts, 10).plain == "aaaa  c"
    assert fit(parts, 1).plain == ""


def test_not_answering_leads_the_third_line() -> None:
    reason = "connect: Connection refused (every request for 3 s)"
    shown = lines(sample_snapshot(), RunInfo("p", not_answering=reason))
    assert shown[2].startswith(f"⚠ target not answering: {reason}")


async def test_a_console_run_with_a_preset_shows_it_at_80x24(target, tmp_path: Path) -> None:
    profile = write_profile(tmp_path, target.url, duration="60s")
    source = PlanSource.from_file(profile, Overrides(preset="medium"), max_duration=60.0)
    app = StressDeckApp(source, ConsoleOptions(monitor=FixedMonitor(), sessions_dir=tmp_path / "s"))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "users 2" in screen_text(app))  # the header is drawn
        idle = "\n".join(screen_text(app).splitlines()[:3])
        must_show(idle, "IDLE", "0:00 / 1:00", "users 2", "medium preset", "preset medium")
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.latest().total.requests > 0)
        await wait_for(pilot, lambda: "RUNNING" in screen_text(app))
        running = "\n".join(screen_text(app).splitlines()[:3])
        must_show(running, "RUNNING", "/ 1:00", "users", "rps", "p95", "err", "medium preset")
        await pilot.press("p")
        await wait_for(pilot, lambda: "paused 0:0" in screen_text(app))
        assert app.controller.latest().active_users == 0
        must_show(screen_text(app), "(0 active)")
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)
        await wait_for(pilot, lambda: "STOPPED" in screen_text(app))
        stopped = "\n".join(screen_text(app).splitlines()[:3])
        must_show(stopped, "STOPPED", "stopped by user", "preset medium")


async def test_a_dead_target_is_said_at_once_and_the_overview_lists_why(tmp_path: Path) -> None:
    profile = write_profile(tmp_path, faults.refused_url(), duration="60s")
    source = PlanSource.from_file(profile, Overrides(), max_duration=60.0)
    app = StressDeckApp(source, ConsoleOptions(monitor=FixedMonitor(), sessions_dir=tmp_path / "s"))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("s")
        await wait_for(pilot, lambda: "target not answering" in screen_text(app), timeout=10)
        shown = screen_text(app)
        must_show(shown, "Connection refused", "top errors", "connect")
        assert "no samples yet" not in shown
        must_show(shown, "no latencies: every request")
        total = app.controller.latest().total
        assert total.error_messages["connect: Connection refused"] == total.error_counts["connect"]
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)
        await wait_for(pilot, lambda: "target not answering" not in screen_text(app))


def test_stopping_state_reads_in_the_header() -> None:
    snap = replace(sample_snapshot(), state=STOPPING)
    assert "STOPPING" in lines(snap, RunInfo("p"))[0]
