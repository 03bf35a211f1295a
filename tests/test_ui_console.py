"""The console's keys as a newcomer meets them: the command palette runs every action, `?`
lists every key, tabs carry their digit, `u` and `R` take exact values, `+`/`-` step the
rate of an open-model run. Real runs against an aiohttp server on 127.0.0.1 (Pilot).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_ui_support import FixedMonitor, screen_text, start, wait_for, write_profile
from test_ui_support import console as support_console
from textual import events
from textual.command import CommandPalette
from textual.widgets import Input

from stressdeck.cli.console import replay_app
from stressdeck.engine.snapshot import PAUSED, RUNNING, STOPPED
from stressdeck.sessions.session import load_session
from stressdeck.ui.app import StressDeckApp
from stressdeck.ui.keys import CONTROLS, PANE_TITLES
from stressdeck.ui.options import ConsoleOptions
from stressdeck.ui.screens.dashboard import DashboardScreen
from stressdeck.ui.screens.dialogs import MetricsScreen, NumberScreen, SaveScreen, parse_number
from stressdeck.ui.screens.help import HelpScreen
from stressdeck.ui.screens.picker import PickerScreen

SIZE = (80, 24)


@pytest.fixture
def profile(tmp_path: Path, target) -> Path:
    # Long enough for a slow shared machine; every test stops its run itself.
    return write_profile(tmp_path, target.url, duration="60s")


def console(profile: Path, tmp_path: Path, **overrides: object) -> StressDeckApp:
    return support_console(profile, tmp_path, max_duration=60.0, **overrides)


async def stop(app: StressDeckApp, pilot) -> None:
    if app.controller.active:
        await pilot.press("s")
    await wait_for(pilot, lambda: app.controller.state == STOPPED)


async def palette(pilot, query: str) -> str:
    """Open the palette with ctrl+p, type ``query``; the screen text once the hits are shown."""
    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
    await pilot.press(*query)
    await pilot.pause(0.4)  # the palette searches in a worker
    return screen_text(app)


def first_hit(shown: str) -> str:
    """The first line the palette lists under its input (the best match)."""
    lines = [line.strip(" ▊▎│┃") for line in shown.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("🔎"))
    return next(line for line in lines[start + 1 :] if line.strip("─━▔▁ "))


async def run_first(pilot) -> None:
    """Down highlights the best match, enter runs it (as a person does)."""
    await pilot.press("down", "enter")


async def test_the_palette_pauses_and_resumes_a_running_run(profile: Path, tmp_path: Path) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        shown = await palette(pilot, "pause")
        assert "Pause or resume  (p)" in first_hit(shown), shown
        await run_first(pilot)
        await wait_for(pilot, lambda: app.controller.state == PAUSED)
        assert isinstance(app.screen, DashboardScreen)
        await palette(pilot, "pause")
        await run_first(pilot)
        await wait_for(pilot, lambda: app.controller.state == RUNNING)
        # The resume reaches the control log with the engine's next snapshot.
        handle = app.controller.handle
        await wait_for(pilot, lambda: len(handle.latest.control_log) >= 2)
        assert [e.command for e in handle.latest.control_log] == ["pause", "resume"]
        await stop(app, pilot)


async def test_the_palette_adds_a_user_and_lists_every_run_action(
    profile: Path, tmp_path: Path
) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        # Asked about the dashboard, as the palette's provider does (the palette is on top).
        titles = {c.title for c in app.get_system_commands(app.screen)}
        closed_model = {"ask_rate", "rate"}
        for control in CONTROLS:
            if control.action.split("(")[0] in closed_model:
                continue
            assert f"{control.title}  ({control.display})" in titles, control.title
        for digit, title in enumerate(PANE_TITLES, start=1):
            assert f"Show {title}  ({digit})" in titles
        shown = await palette(pilot, "more load")
        assert "More load" in first_hit(shown), shown
        await run_first(pilot)
        handle = app.controller.handle
        await wait_for(pilot, lambda: handle.latest.users == 3)
        shown = await palette(pilot, "show charts")
        assert "Show Charts  (3)" in first_hit(shown), shown
        await run_first(pilot)
        await wait_for(pilot, lambda: "requests/s" in screen_text(app))
        await stop(app, pilot)


async def test_tabs_carry_their_digit_and_question_mark_lists_every_key(
    profile: Path, tmp_path: Path
) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=(80, 40)) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        text = screen_text(app)
        for digit, title in enumerate(PANE_TITLES, start=1):
            assert f"{digit} {title}" in text
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        shown = screen_text(app)
        for control in CONTROLS:
            meaning = control.help.split(":", 1)[1].strip()
            assert meaning[:30] in " ".join(shown.split()), control.help
        assert "ctrl+p" in shown and "1-6" in shown
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))


async def test_u_sets_an_exact_number_of_users_live_and_before_a_run(
    profile: Path, tmp_path: Path
) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, NumberScreen))
        await pilot.press(*"7", "enter")  # the current value is selected: typing replaces it
        await wait_for(pilot, lambda: app.controller.plan.load.users == 7)
        await start(app, pilot)
        handle = app.controller.handle
        assert handle.users == 7
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, NumberScreen))
        await pilot.press(*"x", "enter")
        await wait_for(pilot, lambda: "expected a whole number" in screen_text(app))
        app.screen.query_one(Input).value = "3"
        await pilot.press("enter")
        await wait_for(pilot, lambda: handle.latest.users == 3)
        assert [(e.command, e.value) for e in handle.latest.control_log] == [("users", 3)]
        await stop(app, pilot)


async def test_open_model_plus_steps_the_rate_and_capital_r_sets_it(
    profile: Path, tmp_path: Path
) -> None:
    app = console(profile, tmp_path, model="open", rate=20.0)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        handle = app.controller.handle
        await pilot.press("plus")
        await wait_for(pilot, lambda: handle.latest.rate == 30.0)
        await pilot.press("minus", "minus")
        await wait_for(pilot, lambda: handle.latest.rate == 15.0)
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, NumberScreen))
        await pilot.press(*"42.5", "enter")
        await wait_for(pilot, lambda: handle.latest.rate == 42.5)
        assert [(e.command, e.value) for e in handle.latest.control_log] == [
            ("rate", 30.0),
            ("rate", 20.0),
            ("rate", 15.0),
            ("rate", 42.5),
        ]
        await stop(app, pilot)


@pytest.mark.parametrize(
    ("text", "whole", "expected"),
    [("1,000", True, 1000.0), (" 250/s ", False, 250.0), ("0.5", False, 0.5), ("12", True, 12.0)],
)
def test_parse_number_reads_what_people_type(text: str, whole: bool, expected: float) -> None:
    assert parse_number(text, whole, 0.1) == expected


@pytest.mark.parametrize(
    ("text", "whole", "why"),
    [
        ("abc", True, "expected a whole number"),
        ("1.5", True, "expected a whole number"),
        ("0", False, "at least 0.1"),
        ("inf", False, "at least 0.1"),
        ("nan", False, "at least 0.1"),
    ],
)
def test_parse_number_refuses_with_a_reason(text: str, whole: bool, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_number(text, whole, 0.1)


async def test_a_replay_in_the_console_saved_with_ctrl_s_says_what_it_replayed(
    profile: Path, tmp_path: Path
) -> None:
    app = console(profile, tmp_path)
    original = tmp_path / "sessions" / "original.toml"
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await stop(app, pilot)
        assert await app.save_session(original) == original
    replayed = replay_app(str(original))
    again = tmp_path / "again.toml"
    async with replayed.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: replayed.controller.handle is not None)
        await wait_for(pilot, lambda: replayed.controller.handle.state == STOPPED, timeout=10)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(replayed.screen, SaveScreen))
        replayed.screen.query_one(Input).value = str(again)
        await pilot.press("enter")
        await wait_for(pilot, again.exists)
    assert load_session(again).replay_of == str(original)


async def test_ctrl_c_says_how_to_quit_in_plain_words(profile: Path, tmp_path: Path) -> None:
    app = console(profile, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: "ctrl+c does not quit here" in screen_text(app))
        assert "[b]" not in screen_text(app)


async def test_m_shows_the_series_the_profile_already_follows(target, tmp_path: Path) -> None:
    extra = 'metrics_url = "/metrics"\nmetrics = ["http_requests_total"]\n'
    path = write_profile(tmp_path, target.url, extra=extra)
    app = console(path, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricsScreen))
        series = app.screen.query_one("#metrics-series", Input).value
        assert series == "http_requests_total"
        assert app.screen.query_one("#metrics-url", Input).value.endswith("/metrics")


def picker_app(tmp_path: Path, target_url: str) -> StressDeckApp:
    """The console from `stressdeck` with no profile: the picker over a profiles dir."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    write_profile(profiles, target_url)
    return StressDeckApp(
        options=ConsoleOptions(
            profiles_dir=profiles, sessions_dir=tmp_path / "sessions", monitor=FixedMonitor()
        )
    )


async def test_a_url_typed_into_the_picker_from_launch_opens(target, tmp_path: Path) -> None:
    app = picker_app(tmp_path, target.url)
    url = f"{target.url}/ok?q=quick"  # a "q" in the list must not quit
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        await pilot.press(*url)
        assert app.screen.query_one("#adhoc-url", Input).value == url
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert app.controller.plan.requests[0].url == url
        await wait_for(pilot, lambda: "GET" in screen_text(app).splitlines()[0])


async def test_a_curl_command_pasted_anywhere_in_the_picker_opens(target, tmp_path: Path) -> None:
    app = picker_app(tmp_path, target.url)
    command = f"curl -X POST {target.url}/ok \\\n  -H 'X-Test: 1' \\\n  -d 'x'"
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        assert not isinstance(app.focused, Input)  # the list has the focus at launch
        app.focused.post_message(events.Paste(command))
        await wait_for(
            pilot, lambda: app.screen.query_one("#curl-command", Input).value.startswith("curl")
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        spec = app.controller.plan.requests[0]
        assert (spec.method, spec.url) == ("POST", f"{target.url}/ok")
