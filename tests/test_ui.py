"""The console headless: Pilot drives real runs against an aiohttp server on 127.0.0.1.

Every run is capped (a few seconds' duration, a 20 s max-duration) and the tests assert on
what the widgets hold and show, not on timing.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import sys
import termios
import threading
import time
import tomllib
from pathlib import Path

import pytest
from aiohttp import web
from conftest import COUNTER, ServerThread, counting_app
from test_ui_support import (
    FixedMonitor,
    console,
    sample_snapshot,
    screen_text,
    start,
    wait_for,
    write_profile,
)
from textual import events
from textual.widgets import Input, OptionList, Tabs
from waiting import until

from stressdeck.cli.console import (
    build_parser,
    console_app,
    console_main,
    replay_app,
    view_app,
)
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.plan import CEILING_USERS
from stressdeck.engine.snapshot import PAUSED, RUNNING, STOPPED, EndpointSummary, GeneratorHealth
from stressdeck.ui.app import StressDeckApp, session_file_name
from stressdeck.ui.format import ms, rate
from stressdeck.ui.known_hosts import KnownHosts
from stressdeck.ui.options import ConsoleOptions
from stressdeck.ui.planning import PlanSource
from stressdeck.ui.screens.dashboard import DashboardScreen
from stressdeck.ui.screens.dialogs import ConfirmScreen, MetricsScreen, PresetScreen, SaveScreen
from stressdeck.ui.screens.picker import PickerScreen
from stressdeck.ui.widgets.charts import LatencyHistogram
from stressdeck.ui.widgets.eventlog import EventLog
from stressdeck.ui.widgets.tables import EndpointTable, StreamsPane
from stressdeck.ui.widgets.target import TargetChart, TargetPane

SIZE = (100, 30)


def number(text: str) -> int:
    return int(text.replace(",", "") or 0)


def header(app: StressDeckApp) -> str:
    return "\n".join(screen_text(app).splitlines()[:3])


@pytest.fixture
def profile(tmp_path: Path, target) -> Path:
    return write_profile(tmp_path, target.url)


async def test_a_run_fills_the_endpoint_table(profile: Path, tmp_path: Path) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("2")  # the Endpoints tab: only the tab shown is drawn
        await pilot.pause()
        table = app.screen.query_one(EndpointTable)
        assert table.cell_text("ep0", "endpoint") == "read ok"
        assert table.cell_text("ep0", "requests") == "0"
        assert "IDLE" in header(app)
        await start(app, pilot)
        await wait_for(
            pilot,
            lambda: (
                number(table.cell_text("ep0", "requests")) > 0
                and number(table.cell_text("ep1", "requests")) > 0
            ),
        )
        assert table.cell_text("ep1", "endpoint") == "write ok"
        assert table.cell_text("total", "endpoint") == "TOTAL"
        assert number(table.cell_text("total", "requests")) >= number(
            table.cell_text("ep0", "requests")
        )
        assert table.cell_text("ep0", "p50") != "-"
        assert table.cell_text("total", "err") == "0%"
        assert "RUNNING" in header(app)
        await pilot.press("s")  # stop: the engine flushes and the final snapshot shows
        await wait_for(pilot, lambda: app.controller.state == STOPPED and "STOPPED" in header(app))
        assert "stopped by user" in header(app)


async def test_plus_adds_a_user_to_the_running_engine(profile: Path, tmp_path: Path) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        handle = app.controller.handle
        assert handle.latest.users == 2
        await pilot.press("plus")
        await wait_for(pilot, lambda: handle.latest.users == 3 and "users 3" in header(app))
        await pilot.press("asterisk")  # ×2
        await wait_for(pilot, lambda: handle.latest.users == 6)
        await pilot.press("minus")
        await wait_for(pilot, lambda: handle.latest.users == 5 and "users 5" in header(app))
        assert [(e.command, e.value) for e in handle.latest.control_log] == [
            ("users", 3),
            ("users", 6),
            ("users", 5),
        ]
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)


async def test_keys_pressed_within_one_tick_add_up(profile: Path, tmp_path: Path) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        handle = app.controller.handle
        for _ in range(3):  # a burst, as a terminal delivers keys typed fast: all within one tick
            app.post_message(events.Key("plus", "+"))
        await wait_for(pilot, lambda: handle.latest.users == 5 and "users 5" in header(app))
        assert [(e.command, e.value) for e in handle.latest.control_log] == [
            ("users", 3),
            ("users", 4),
            ("users", 5),
        ]
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)


async def test_brackets_change_the_rate_of_an_open_model_run(profile: Path, tmp_path: Path) -> None:
    app = console(profile, tmp_path, model="open", rate=20.0)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        handle = app.controller.handle
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: handle.latest.rate == 22.0 and "rate 22.0/s" in header(app))
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: handle.latest.rate == 19.8)
        assert [(e.command, e.value) for e in handle.latest.control_log] == [
            ("rate", 22.0),
            ("rate", 19.8),
        ]
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)


async def test_pause_and_resume_show_in_the_header(profile: Path, tmp_path: Path) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.controller.state == PAUSED and "PAUSED" in header(app))
        # A paused run sends nothing: the last second's rate does not stay on screen.
        assert " 0.0 rps" in header(app), header(app)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.controller.state == RUNNING and "RUNNING" in header(app))
        handle = app.controller.handle  # the resume reaches the log with the next snapshot
        await wait_for(pilot, lambda: len(handle.latest.control_log) >= 2)
        assert [e.command for e in handle.latest.control_log] == ["pause", "resume"]
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)


async def test_save_writes_a_session_and_asks_before_overwriting(
    profile: Path, tmp_path: Path
) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press("plus")
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SaveScreen))
        name = app.screen.query_one(Input)
        assert name.value.endswith(".toml")
        name.value = "ui-run.toml"
        await pilot.press("enter")
        saved = tmp_path / "sessions" / "ui-run.toml"
        await wait_for(pilot, lambda: saved.exists() and isinstance(app.screen, DashboardScreen))
        document = tomllib.loads(saved.read_text(encoding="utf-8"))
        assert document["format_version"] >= 1
        # The control log went into the session: the "+" pressed during the run.
        assert [(e["command"], e.get("value")) for e in document["results"]["control_log"]] == [
            ("users", 3),
            ("stop", None),
        ]
        first = saved.read_bytes()

        # The same name again: a question first; "n" leaves the file alone, "y" replaces it.
        for answer, replaced in (("n", False), ("y", True)):
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: isinstance(app.screen, SaveScreen))
            app.screen.query_one(Input).value = "ui-run.toml"
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            if replaced:
                os.utime(saved, (0, 0))
            await pilot.press(answer)
            await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
            if replaced:
                await wait_for(pilot, lambda: saved.stat().st_mtime > 0)
            else:
                assert saved.read_bytes() == first

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SaveScreen))
        app.screen.query_one(Input).value = "ui-run.json"
        await pilot.press("enter")
        as_json = tmp_path / "sessions" / "ui-run.json"
        await wait_for(pilot, as_json.exists)
        assert json.loads(as_json.read_text(encoding="utf-8"))["format_version"] >= 1


async def test_a_saved_session_replays_in_the_console(profile: Path, tmp_path: Path) -> None:
    app = console(profile, tmp_path)
    saved = tmp_path / "sessions" / "original.json"
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press("plus")
        await wait_for(pilot, lambda: app.controller.handle.latest.users == 3)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)
        assert await app.save_session(saved) == saved

    replayed = replay_app(str(saved))
    async with replayed.run_test(size=SIZE) as pilot:
        # Started at once, then steered: the same +1 user, then the same stop.
        await wait_for(pilot, lambda: replayed.controller.handle is not None)
        handle = replayed.controller.handle
        await wait_for(pilot, lambda: handle.latest.users == 3, timeout=8)
        await wait_for(pilot, lambda: handle.state == STOPPED, timeout=8)
        assert [e.command for e in handle.latest.control_log] == ["users", "stop"]


async def test_save_rejects_a_name_without_a_session_extension(
    profile: Path, tmp_path: Path
) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SaveScreen))
        app.screen.query_one(Input).value = "notes.txt"
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, SaveScreen)
        assert ".toml or .json" in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert not (tmp_path / "sessions").exists()


async def test_quit_while_running_asks_and_no_keeps_running(profile: Path, tmp_path: Path) -> None:
    # Long enough that the run cannot end on its own while the dialogs come and go.
    app = console(profile, tmp_path, duration=15.0)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Stop it" in screen_text(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert app.is_running and app.controller.state == RUNNING
        handle = app.controller.handle
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running)
    assert handle.state == STOPPED  # the engine was asked to stop and flushed before exit
    assert handle.latest.stop_reason == "stopped by user"
    assert app.return_code == 0


async def test_quit_when_idle_does_not_ask(profile: Path, tmp_path: Path) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)


async def test_load_keys_after_a_run_show_the_next_run_in_the_header(
    profile: Path, tmp_path: Path
) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)
        await wait_for(pilot, lambda: "next run: closed, 2 users" in header(app))
        await pilot.press("plus", "plus")  # the stopped run's snapshot no longer changes
        await wait_for(pilot, lambda: "next run: closed, 4 users" in header(app))


async def test_load_keys_before_a_run_change_the_next_run(profile: Path, tmp_path: Path) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("plus", "plus")
        assert app.controller.handle is None
        assert app.controller.plan.load.users == 4
        assert app.controller.plan.overrides.users == 4
        await pilot.press("P")  # shift+p, same as r
        await wait_for(pilot, lambda: isinstance(app.screen, PresetScreen))
        options = app.screen.query_one(OptionList)
        options.highlighted = options.get_option_index("light")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert app.controller.plan.load.preset == "light"
        assert "preset light" in header(app)


async def test_refresh_is_bounded_by_the_interval(profile: Path, tmp_path: Path) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        before = app.renders
        await pilot.pause(2.0)
        # 0.25 s interval: at most ~8 renders in 2 s (and some: it is live, even on a busy box).
        assert 1 <= app.renders - before <= 10
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)


async def test_hostile_names_and_errors_show_literally() -> None:
    boom = EndpointSummary(
        "[bold red]boom[/]",
        requests=3,
        errors=3,
        error_rate=1.0,
        error_counts={"bad\x1b[31mred": 3},
    )
    base = sample_snapshot()
    snap = sample_snapshot(
        endpoints=(boom, *base.endpoints[1:]),
        total=EndpointSummary(
            "total", requests=3, errors=3, error_rate=1.0, error_counts={"bad\x1b[31mred": 3}
        ),
        stop_reason="worker said \x1b[2J[link=x]hi[/link]",
        state=STOPPED,
    )
    app = StressDeckApp(options=ConsoleOptions(static_snapshot=snap, monitor=FixedMonitor()))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("2")  # the Endpoints tab: only the tab shown is drawn
        await pilot.pause()
        table = app.screen.query_one(EndpointTable)
        assert table.cell_text("ep0", "endpoint") == "[bold red]boom[/]"
        await pilot.press("2")
        shown = screen_text(app)
        assert "[bold red]boom[/]" in shown
        assert "bad\\x1b[31mred" in shown  # the escape is shown as text, not obeyed
        assert "worker said \\x1b[2J[link=x]hi[/link]" in header(app)
        assert "\x1b" not in shown
        await pilot.press("5")
        log = app.screen.query_one(EventLog)
        assert any("first bad\\x1b[31mred error" in line for line in log.lines_text)
        assert "first bad\\x1b[31mred error" in screen_text(app)


async def test_h_toggles_the_histogram_window() -> None:
    app = StressDeckApp(
        options=ConsoleOptions(static_snapshot=sample_snapshot(), monitor=FixedMonitor())
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "whole run" in screen_text(app)
        await pilot.press("h")
        await pilot.pause()
        assert app.screen.query_one(LatencyHistogram).recent
        assert "last 10 s" in screen_text(app)


async def test_wide_terminal_shows_every_pane_without_tabs() -> None:
    app = StressDeckApp(
        options=ConsoleOptions(static_snapshot=sample_snapshot(), monitor=FixedMonitor())
    )
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert app.screen.has_class("-wide")
        assert not app.screen.query_one(Tabs).display
        shown = screen_text(app)
        for text in (
            "by latency, whole run",
            "list items",
            "cpu0",
            "threshold failing",
            "requests/s",
        ):
            assert text in shown
    narrow = StressDeckApp(
        options=ConsoleOptions(static_snapshot=sample_snapshot(), monitor=FixedMonitor())
    )
    async with narrow.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert narrow.screen.has_class("-narrow")
        assert "list items" not in screen_text(narrow)  # one pane at a time
        await pilot.press("2")
        assert "list items" in screen_text(narrow)


async def test_picker_lists_profiles_and_opens_one(profile: Path, tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text('name = "broken"\n', encoding="utf-8")
    app = StressDeckApp(
        options=ConsoleOptions(
            profiles_dir=tmp_path, sessions_dir=tmp_path / "sessions", monitor=FixedMonitor()
        )
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        shown = screen_text(app)
        assert "UI test" in shown and "2 endpoints" in shown and "broken.toml" in shown
        options = app.screen.query_one(OptionList)
        options.highlighted = next(
            i for i, e in enumerate(app.screen.entries) if e.source is not None
        )
        await pilot.pause()
        assert "read ok" in screen_text(app)  # the preview of the highlighted profile
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert "UI test" in header(app)
        await start(app, pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)


async def test_picker_adhoc_url(target, tmp_path: Path) -> None:
    app = StressDeckApp(
        options=ConsoleOptions(
            profiles_dir=tmp_path,
            sessions_dir=tmp_path / "sessions",
            monitor=FixedMonitor(),
            overrides=Overrides(duration=3.0, users=1),
        )
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        app.screen.query_one("#adhoc-url", Input).value = f"{target.url}/ok"
        app.screen.query_one("#adhoc-url", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert app.controller.plan.load.users == 1
        await pilot.press("2")  # the Endpoints tab: only the tab shown is drawn
        await pilot.pause()
        assert app.screen.query_one(EndpointTable).cell_text("ep0", "endpoint") == "GET /ok"
        await start(app, pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)


async def test_picker_reports_a_bad_url_inline(tmp_path: Path) -> None:
    app = StressDeckApp(options=ConsoleOptions(profiles_dir=tmp_path, monitor=FixedMonitor()))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        app.screen.query_one("#adhoc-url", Input).value = "ftp://nowhere"
        app.screen.query_one("#adhoc-url", Input).focus()
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, PickerScreen)
        assert "ad-hoc" in screen_text(app)


async def test_controls_are_in_the_command_palette(profile: Path, tmp_path: Path) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in (
            "Start or stop the run  (s)",
            "More load (users +1, or the next rate step)  (+)",
            "Double the load (users or rate ×2)  (*)",
            "Save session  (^s)",
            "Choose a preset  (r)",
            "Pause or resume  (p)",
        ):
            assert title in titles
        assert not any(t.startswith("Rate") for t in titles)  # closed model: no rate keys


def test_console_main_bad_profile_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[load]\nusers = "many"\n', encoding="utf-8")
    assert console_main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_console_main_unknown_target_pid_exits_2(tmp_path: Path, capsys) -> None:
    assert console_main(["console", "--target-pid", "999999999"]) == 2
    assert "999999999" in capsys.readouterr().err


def test_session_file_name_is_a_safe_slug() -> None:
    name = session_file_name("Demo mix / [bold]x", now=0)
    assert name.startswith("demo-mix-bold-x-") and name.endswith(".toml")


def console_from_argv(argv: list[str], tmp_path: Path) -> StressDeckApp:
    """The console exactly as `stressdeck ARGV` builds it (not running)."""
    args = build_parser().parse_args(
        [*argv, "--profiles-dir", str(tmp_path), "--sessions-dir", str(tmp_path / "sessions")]
    )
    app = console_app(args, args.profile, Overrides.from_args(args))
    app.monitor = FixedMonitor()
    return app


async def test_processes_option_reaches_the_engine(profile: Path, tmp_path: Path) -> None:
    assert console_from_argv([str(profile), "--processes", "3"], tmp_path).controller.processes == 3
    assert console_from_argv([str(profile)], tmp_path).controller.processes == (os.cpu_count() or 1)
    app = console_from_argv([str(profile), "--processes", "1", "--duration", "5s"], tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        assert app.controller.handle.processes == 1
        assert app.controller.handle.latest.health.processes == 1
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)


def test_i_know_lifts_the_safety_cap_in_the_console(profile: Path, tmp_path: Path, capsys) -> None:
    assert console_main([str(profile), "--users", "5000"]) == 2
    assert "safety cap" in capsys.readouterr().err
    app = console_from_argv([str(profile), "--users", "5000", "--i-know"], tmp_path)
    assert app.controller.plan.load.users == 5000 and app.controller.plan.max_users == CEILING_USERS
    app.controller.change_users(delta=1)  # a change before the run keeps --i-know
    assert app.controller.plan.load.users == 5001 and app.controller.plan.max_users == CEILING_USERS


async def test_a_saturated_generator_is_warned_about_in_the_header() -> None:
    snap = sample_snapshot(
        health=GeneratorHealth(loop_lag_ms=120.0, send_lag_ms=0.4, cpu_percent=97.0)
    )
    app = StressDeckApp(options=ConsoleOptions(static_snapshot=snap, monitor=FixedMonitor()))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "⚠ generator saturated" in screen_text(app))
        lines = screen_text(app).splitlines()
        # Its own line, so a long thresholds line never pushes it off an 80-column screen.
        assert lines[3].strip().startswith("⚠ generator saturated: loop lag 120ms, cpu 97%")
        assert "threshold" in lines[2]
    healthy = StressDeckApp(
        options=ConsoleOptions(static_snapshot=sample_snapshot(), monitor=FixedMonitor())
    )
    async with healthy.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "threshold" in screen_text(healthy))  # the header is drawn
        assert "saturated" not in screen_text(healthy)


async def test_tls_verification_off_is_warned_about(tmp_path: Path, target) -> None:
    insecure = write_profile(tmp_path, target.url, extra="insecure = true")
    app = console(insecure, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "⚠ TLS verification off" in screen_text(app).splitlines()[3])
        await start(app, pilot)
        log = app.screen.query_one(EventLog)
        await wait_for(
            pilot, lambda: any("TLS verification off" in line for line in log.lines_text)
        )
        # Under a saturation warning when this machine is busy: one line each.
        assert any(
            line.strip() == "⚠ TLS verification off" for line in screen_text(app).splitlines()[3:5]
        )
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)
    plain = console(write_profile(tmp_path, target.url), tmp_path)
    async with plain.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "IDLE" in screen_text(plain))
        assert "TLS" not in screen_text(plain)


def streaming_app() -> web.Application:
    """/ok in one piece, /chunks as five HTTP chunks, /sse as four server-sent events."""
    app = web.Application()

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def chunks(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(5):
            await response.write(f"part {i}\n".encode())
        await response.write_eof()
        return response

    async def sse(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(4):
            await response.write(f"data: token-{i}\n\n".encode())
        await response.write_eof()
        return response

    app.router.add_get("/ok", ok)
    app.router.add_get("/chunks", chunks)
    app.router.add_get("/sse", sse)
    return app


async def test_streaming_endpoints_show_events_chunks_and_bytes(tmp_path: Path) -> None:
    with ServerThread(streaming_app()) as server:
        path = tmp_path / "streams.toml"
        path.write_text(
            f'name = "streams"\nbase_url = "{server.url}"\n[load]\nusers = 2\nduration = "5s"\n'
            + "".join(
                f'[[endpoints]]\nname = "{name}"\npath = "/{name}"\nthink = "20ms"\n'
                for name in ("ok", "chunks", "sse")
            ),
            encoding="utf-8",
        )
        app = console(path, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.renders > 0)
            await pilot.press("2")
            streams = app.screen.query_one(StreamsPane)
            assert not streams.display  # nothing streamed yet: no room taken
            await start(app, pilot)
            await wait_for(
                pilot, lambda: all(e.requests > 2 for e in app.controller.latest().endpoints)
            )
            await pilot.press("s")
            await wait_for(pilot, lambda: app.controller.state == STOPPED)
            final = app.controller.latest()
            ok, chunked, sse = final.endpoints
            # Until the next refresh the panes may still show a tick from before the stop; only
            # the final snapshot says STOPPED, and every pane renders from the same snapshot.
            await wait_for(pilot, lambda: streams.display and "STOPPED" in header(app))
            rows = {
                line.split()[0]: line.split()
                for line in screen_text(app).splitlines()
                if line.split() and line.split()[0] in ("ok", "chunks", "sse", "streamed")
            }
            assert sse.events == 4 * sse.requests and chunked.chunks == 5 * chunked.requests
            assert rows["streamed"] == ["streamed", "events", "chunks", "bytes", "per", "response"]
            assert rows["sse"][1] == f"{sse.events:,}"
            assert rows["chunks"][1] == "-" and rows["chunks"][2] == f"{chunked.chunks:,}"
            assert rows["chunks"][3].endswith("B")
            assert rows["ok"][1] != "-"  # only in the endpoint table: it did not stream
            assert max(len(line.rstrip()) for line in screen_text(app).splitlines()) <= 80


def metrics_app() -> web.Application:
    """The counting app plus Prometheus text at /metrics (its request counter and a gauge),
    and /metrics-broken, which always answers 500."""
    app = counting_app()

    async def metrics(request: web.Request) -> web.Response:
        count = app[COUNTER]["count"]
        text = (
            "# TYPE demo_requests_total counter\n"
            f"demo_requests_total {count}\n"
            "# TYPE demo_queue_depth gauge\n"
            "demo_queue_depth 7\n"
        )
        return web.Response(text=text, content_type="text/plain")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="no metrics today")

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/metrics-broken", broken)
    return app


async def test_target_metrics_show_latest_values_and_a_chart(tmp_path: Path) -> None:
    with ServerThread(metrics_app()) as server:
        path = write_profile(
            tmp_path,
            server.url,
            duration="10s",
            extra='metrics_url = "/metrics"\nmetrics = ["demo_requests_total", "demo_queue_depth"]',
        )
        app = console(path, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.renders > 0)
            await pilot.press("6")
            pane = app.screen.query_one(TargetPane)
            await wait_for(pilot, lambda: "demo_queue_depth" in screen_text(app))
            assert f"metrics {server.url}/metrics" in pane.status_text
            await start(app, pilot)
            # A gauge shows from the first scrape; a counter is a rate from the second on.
            await wait_for(
                pilot, lambda: "demo_queue_depth  7  (value)" in screen_text(app), timeout=8
            )
            await wait_for(pilot, lambda: "/s  (rate)" in pane.status_text, timeout=8)
            line = next(x for x in pane.status_text.splitlines() if "demo_requests_total" in x)
            assert float(line.split()[-2].removesuffix("/s")) > 0
            await wait_for(pilot, lambda: not app.screen.query_one(TargetChart).empty, timeout=8)
            assert "requests/s (left)" in screen_text(app)
            assert "scrape failed" not in screen_text(app)
            await pilot.press("s")
            await wait_for(pilot, lambda: app.controller.state == STOPPED)


async def test_m_sets_the_metrics_url_and_a_failed_scrape_is_shown_not_fatal(
    tmp_path: Path,
) -> None:
    with ServerThread(metrics_app()) as server:
        app = console(write_profile(tmp_path, server.url, duration="10s"), tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.renders > 0)
            await pilot.press("6")
            await wait_for(pilot, lambda: "press m" in screen_text(app))
            await pilot.press("m")
            await wait_for(pilot, lambda: isinstance(app.screen, MetricsScreen))
            # A bad series: the profile's own check, in one line, and the dialog stays open.
            app.screen.query_one("#metrics-url", Input).value = "/metrics-broken"
            app.screen.query_one("#metrics-series", Input).value = "p95(demo_queue_depth"
            app.screen.query_one("#metrics-series", Input).focus()
            await pilot.press("enter")
            await wait_for(pilot, lambda: "expected a series like" in screen_text(app))
            assert isinstance(app.screen, MetricsScreen)
            app.screen.query_one(
                "#metrics-series", Input
            ).value = 'demo_queue_depth, value(demo_requests_total{a="1,2"})'
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
            plan = app.controller.plan
            assert plan.metrics_url == f"{server.url}/metrics-broken"
            assert plan.metrics == ("demo_queue_depth", 'value(demo_requests_total{a="1,2"})')
            await start(app, pilot)
            await wait_for(
                pilot, lambda: "⚠ scrape failed: HTTP 500" in screen_text(app), timeout=8
            )
            before = app.controller.latest().total.requests
            await wait_for(pilot, lambda: app.controller.latest().total.requests > before)
            assert app.controller.state == RUNNING  # a failing scrape never stops the run
            assert app.controller.latest().target_metrics.failures >= 1
            await pilot.press("s")
            await wait_for(pilot, lambda: app.controller.state == STOPPED)


async def test_a_host_past_this_machine_asks_first(profile: Path, tmp_path: Path, target) -> None:
    """The app is told that no host is local, so the test's own 127.0.0.1 server plays the
    remote one: if the question were skipped, the load still could only reach that server."""
    known = KnownHosts(tmp_path / "known.json", is_local=lambda host: False)
    app = StressDeckApp(
        PlanSource.from_file(profile, max_duration=20.0),
        ConsoleOptions(
            monitor=FixedMonitor(), sessions_dir=tmp_path / "sessions", known_hosts=known
        ),
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Send load to 127.0.0.1?" in screen_text(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.pause(0.3)
        assert app.controller.handle is None and app.controller.state == "idle"
        assert target.count == 0  # "no" sent nothing
        assert "IDLE" in header(app)
        assert any("not confirmed" in line for line in app.screen.query_one(EventLog).lines_text)
        await pilot.press("s")  # asked again: escape means no as well
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert app.controller.handle is None and target.count == 0
        assert not known.path.exists()  # nothing accepted, nothing remembered
        await pilot.press("s")  # yes: the run starts and the answer is kept for this profile
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: target.count > 0)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)
        assert known.to_confirm(app.controller.plan) == []
        await pilot.press("s")  # asked once per profile: the next run starts at once
        await wait_for(pilot, lambda: app.controller.state == RUNNING)
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)


async def test_a_loopback_target_starts_without_asking(
    profile: Path, tmp_path: Path, target
) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.handle is not None)
        assert not isinstance(app.screen, ConfirmScreen)
        await wait_for(pilot, lambda: target.count > 0)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)
    assert not (tmp_path / "sessions" / ".known-hosts.json").exists()


async def test_notifications_show_outside_text_literally(
    profile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A short relative path, so the toast does not wrap the name (xdist's tmp paths are long).
    monkeypatch.chdir(tmp_path)
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(app, pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)
        odd = Path("sessions") / "[bold]x[/bold].toml"
        assert await app.save_session(odd) == odd
        await wait_for(pilot, lambda: "[bold]x[/bold].toml" in screen_text(app))


async def saved_run(profile: Path, tmp_path: Path, name: str, users: int = 2) -> Path:
    """Run the console against the test server for a moment and save the session as ``name``."""
    app = console(profile, tmp_path, users=users)
    saved = tmp_path / "sessions" / name
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await wait_for(
            pilot,
            lambda: all(e.requests > 5 for e in app.controller.latest().endpoints),
            timeout=15,
        )
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)
        assert await app.save_session(saved) == saved
    return saved


async def test_view_opens_a_saved_session_read_only(profile: Path, tmp_path: Path) -> None:
    from stressdeck.sessions.session import load_session

    saved = await saved_run(profile, tmp_path, "[bold]odd\x1b[2Jname.toml")
    session = load_session(saved)
    app = view_app(str(saved))
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        # The header grows from one line to three as the layout catches up: wait for all of it.
        await wait_for(pilot, lambda: "STOPPED" in header(app) and "stopped by user" in header(app))
        assert "[bold]odd\\x1b[2Jname.toml: UI test" in header(app)  # the file name, escaped
        await pilot.press("2")  # the Endpoints tab: only the tab shown is drawn
        await pilot.pause()
        table = app.screen.query_one(EndpointTable)
        read_ok = session.results.endpoints[0]
        assert table.cell_text("ep0", "endpoint") == "read ok"
        assert number(table.cell_text("ep0", "requests")) == read_ok.requests
        assert number(table.cell_text("total", "requests")) == session.results.total.requests
        await wait_for(pilot, lambda: "read-only" in screen_text(app), timeout=8)
        for key in ("s", "plus", "p", "ctrl+s", "m"):  # run keys do nothing on a saved run
            await pilot.press(key)
        await pilot.pause(0.2)
        assert app.controller is None and isinstance(app.screen, DashboardScreen)
        assert "STOPPED" in header(app)
        await pilot.press("4")
        await wait_for(pilot, lambda: "no live host figures" in screen_text(app))
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)


def test_view_of_a_bad_session_exits_2_with_one_line(profile: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('format_version = 1\n[host]\ncores = "many"\n', encoding="utf-8")
    assert console_main(["view", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "bad.toml" in err
    assert console_main(["view", str(tmp_path / "missing.toml")]) == 2
    capsys.readouterr()
    assert console_main([str(profile), "--baseline", str(bad)]) == 2
    assert "bad.toml" in capsys.readouterr().err


async def test_baseline_figures_show_under_the_live_ones(profile: Path, tmp_path: Path) -> None:
    from stressdeck.sessions.session import load_session

    saved = await saved_run(profile, tmp_path, "baseline.json")
    base = load_session(saved).results
    app = console_from_argv([str(profile), "--baseline", str(saved), "--duration", "5s"], tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("2")
        table = app.screen.query_one(EndpointTable)
        await wait_for(pilot, lambda: table.row_count == 6)
        assert table.cell_text("ep0-baseline", "endpoint").strip() == "↳ baseline"
        assert table.cell_text("ep0-baseline", "requests") == f"{base.endpoints[0].requests:,}"
        for column, key in (("p50", "p50"), ("p95", "p95"), ("p99", "p99")):
            assert table.cell_text("total-baseline", column) == ms(
                getattr(base.total.latency_ms, key)
            )
        assert table.cell_text("ep1-baseline", "rps") == rate(base.endpoints[1].rps)
        await start(app, pilot)
        await wait_for(pilot, lambda: number(table.cell_text("ep0", "requests")) > 0)
        assert (
            table.cell_text("ep0-baseline", "requests") == f"{base.endpoints[0].requests:,}"
        )  # unchanged
        shown = screen_text(app)
        assert (
            shown.count("↳ baseline") == 3
            and max(len(line.rstrip()) for line in shown.splitlines()) <= 80
        )
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)


async def test_picker_imports_a_pasted_curl_command_and_opens_it(target, tmp_path: Path) -> None:
    from textual import events

    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "get-ok.toml").write_text("taken", encoding="utf-8")  # never overwritten
    app = StressDeckApp(
        options=ConsoleOptions(
            profiles_dir=profiles,
            sessions_dir=tmp_path / "sessions",
            monitor=FixedMonitor(),
            overrides=Overrides(duration=3.0, users=1),
        )
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        field = app.screen.query_one("#curl-command", Input)
        field.focus()
        # As "Copy as cURL" gives it: one option a line, joined by backslash-newlines.
        field.post_message(
            events.Paste(f"curl '{target.url}/ok' \\\n  -H 'X-Test: [b]1[/b]' \\\n  --compressed\n")
        )
        await wait_for(pilot, lambda: field.value.startswith("curl "))
        assert "\n" not in field.value and "X-Test" in field.value
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        written = profiles / "get-ok-2.toml"
        assert (
            written.exists() and (profiles / "get-ok.toml").read_text(encoding="utf-8") == "taken"
        )
        assert 'X-Test = "[b]1[/b]"' in written.read_text(encoding="utf-8")
        assert app.controller.source.profile.source == str(written)
        await pilot.press("2")  # the Endpoints tab: only the tab shown is drawn
        await pilot.pause()
        assert app.screen.query_one(EndpointTable).cell_text("ep0", "endpoint") == "GET /ok"
        await start(app, pilot)
        assert target.count > 0
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)


async def test_picker_shows_a_bad_curl_command_in_one_line(tmp_path: Path) -> None:
    app = StressDeckApp(options=ConsoleOptions(profiles_dir=tmp_path, monitor=FixedMonitor()))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        field = app.screen.query_one("#curl-command", Input)
        field.value = "wget http://127.0.0.1:9/[red]x"
        field.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "expected a command starting with" in screen_text(app))
        assert isinstance(app.screen, PickerScreen)
        assert list(tmp_path.iterdir()) == []  # nothing written


ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\\\)|[@-Z\\\\-_])")


class ConsoleProcess:
    """`python -m stressdeck ARGS` on its own pseudo-terminal (80x24), its output drained
    on a thread so the console never blocks writing to it."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: become the console
            os.chdir(cwd)
            env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
            os.execvpe(sys.executable, [sys.executable, "-m", "stressdeck", *args], env)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.output = bytearray()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.status: int | None = None

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            self.output += data

    @property
    def text(self) -> str:
        return ANSI.sub("", self.output.decode("utf-8", errors="replace"))

    def wait_exit(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._reader.join(5)
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            time.sleep(0.05)
        raise AssertionError(f"the console did not exit within {timeout} s")

    def kill(self) -> None:
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            self.wait_exit(10)
        os.close(self.fd)


# SIGHUP (the SSH session dropped) in the everyday run; all three in the slow one.
@pytest.mark.parametrize(
    "signum",
    [
        pytest.param(signal.SIGTERM, marks=pytest.mark.slow),
        pytest.param(signal.SIGINT, marks=pytest.mark.slow),
        signal.SIGHUP,
    ],
)
def test_a_signal_stops_the_run_and_autosaves_it(tmp_path: Path, target, signum: int) -> None:
    from stressdeck.sessions.session import load_session

    profile = write_profile(tmp_path, target.url, duration="60s")
    sessions = tmp_path / "sessions"
    console = ConsoleProcess(
        [str(profile), "--processes", "1", "--sessions-dir", str(sessions)], tmp_path
    )
    try:
        until(lambda: "Start/Stop" in console.text, 30, "the console drew its footer")
        os.write(console.fd, b"s")
        until(lambda: target.count > 20, 30, "the run sent requests")
        os.kill(console.pid, signum)
        code = console.wait_exit(30)
    finally:
        console.kill()
    # SIGHUP is the SSH connection dropping: 128 + 1, as a shell reports it.
    assert code == (129 if signum == signal.SIGHUP else 130), console.text[-1500:]
    saved = list(sessions.glob("autosave-*.toml"))
    assert len(saved) == 1, console.text[-2000:]
    assert f"partial session saved: {saved[0]}" in console.text
    session = load_session(saved[0])
    name = signal.Signals(signum).name
    assert session.results.stop_reason == f"interrupted ({name})"
    assert session.results.total.requests > 0
    assert not list(sessions.glob(".*.tmp"))  # written atomically: no temporary left behind
