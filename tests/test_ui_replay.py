"""A replay in the console says so in the header at 80 columns, and when it ends by itself
(the original was stopped there) its stop reason says that, not "stopped by user"."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_ui_support import console as support_console
from test_ui_support import screen_text, start, wait_for, write_profile

from stressdeck.cli.console import replay_app
from stressdeck.engine.snapshot import STOPPED
from stressdeck.sessions.replay import REPLAYED_STOP
from stressdeck.sessions.session import load_session
from stressdeck.ui.app import StressDeckApp

SIZE = (80, 24)


def header(app: StressDeckApp) -> str:
    return "\n".join(screen_text(app).splitlines()[:3])


async def stop(app: StressDeckApp, pilot) -> None:
    if app.controller.active:
        await pilot.press("s")  # the user stops it
    await wait_for(pilot, lambda: app.controller.state == STOPPED)


@pytest.fixture
def original(tmp_path: Path, target) -> Path:
    return write_profile(tmp_path, target.url, duration="60s")


async def test_a_replay_says_so_in_the_header_and_ends_with_the_replays_end(
    original: Path, tmp_path: Path
) -> None:
    app = support_console(original, tmp_path, max_duration=60.0)
    saved = tmp_path / "sessions" / "original.toml"
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        assert "REPLAY" not in header(app)  # a run of its own is not a replay
        await stop(app, pilot)
        assert await app.save_session(saved) == saved
    assert load_session(saved).results.stop_reason == "stopped by user"
    replayed = replay_app(str(saved))
    async with replayed.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: replayed.controller.handle is not None)
        await wait_for(pilot, lambda: "REPLAY" in header(replayed))
        await wait_for(pilot, lambda: replayed.controller.handle.state == STOPPED, timeout=30)
        assert replayed.controller.handle.latest.stop_reason == REPLAYED_STOP
        await wait_for(pilot, lambda: "STOPPED" in header(replayed))
        first = header(replayed).splitlines()[0]
        assert first.split()[:2] == ["STOPPED", "REPLAY"], first
        assert "stopped by user" not in header(replayed)
        await wait_for(pilot, lambda: "replay ended" in header(replayed))
