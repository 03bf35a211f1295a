"""Replay: the saved plan runs again and the live changes land at the same offsets."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from conftest import ServerThread, counting_app
from session_support import crafted_document, profile_document, run_document, run_sync

from stressdeck.cli import main
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.snapshot import RUNNING, STOPPED, ControlEvent
from stressdeck.sessions.replay import EARLY, plan_for_replay, steer
from stressdeck.sessions.session import build_session, load_session, save_session, write_session

TICK = 0.25


@pytest.fixture
def server() -> ServerThread:
    with ServerThread(counting_app()) as running:
        yield running


@pytest.mark.slow
def test_a_replay_reproduces_three_live_changes_at_the_same_offsets(
    server: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changes = [
        (0.5, lambda h: h.set_users(4)),
        (1.0, lambda h: h.pause()),
        (1.5, lambda h: h.resume()),
    ]
    document = profile_document(server.url, duration="3s")
    # Think time keeps the generator below saturation: a saturated generator (its own warning)
    # holds the event loop for whole ticks and no timing on that loop can be kept.
    for endpoint in document["endpoints"]:
        endpoint["think"] = "10ms"
    plan, snapshot = run_sync(document, changes, users=2)
    original = save_session(tmp_path / "original.toml", plan, snapshot)
    code = main(["replay", str(original), "--save", str(tmp_path / "again.json"), "--quiet"])
    assert code == 0, capsys.readouterr()
    assert "replaying 3 live change(s)" not in capsys.readouterr().out  # --quiet
    before = load_session(original).control_log
    after = load_session(tmp_path / "again.json")
    assert [e.command for e in after.control_log] == ["users", "pause", "resume"]
    assert after.control_log[0].value == 4
    for old, new in zip(before, after.control_log, strict=True):
        assert abs(new.offset - old.offset) <= TICK, (before, after.control_log)
    assert after.replay_of == str(original)
    assert after.results.total.requests > 0 and after.plan.overrides == Overrides(users=2)
    assert after.results.timeline[-1].users == 4


async def test_replay_base_url_overrides_the_saved_target(
    server: ServerThread, tmp_path: Path
) -> None:
    document = profile_document("http://127.0.0.1:9", duration="1s")
    session = build_session(*await run_document(document, [], duration=0.5))
    plan = plan_for_replay(session, "s.toml", base_url=server.url)
    assert plan.target == server.url and plan.requests[0].url == f"{server.url}/ok"
    assert plan.load.duration == 0.5  # the saved --duration override still applies


@pytest.mark.slow
def test_an_interrupted_session_replays_up_to_where_it_stopped(
    server: ServerThread, tmp_path: Path
) -> None:
    plan, snapshot = run_sync(profile_document(server.url, duration="1s"))
    session = build_session(plan, snapshot)
    cut = replace(session, results=replace(session.results, stop_reason="interrupted", elapsed=0.6))
    path = write_session(tmp_path / "cut.toml", cut)
    code = main(["replay", str(path), "--save", str(tmp_path / "again.toml"), "--quiet"])
    assert code == 0  # the replay did what was asked: nobody interrupted it
    again = load_session(tmp_path / "again.toml")
    assert again.results.stop_reason == "interrupted here in the original run"
    assert 0.6 - TICK <= again.results.elapsed < 0.6 + 4 * TICK


def test_a_broken_saved_profile_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tomli_w

    document = crafted_document()
    document["plan"]["profile"]["endpoints"][0]["method"] = "FETCH"
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(document))
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: {path}: plan.profile.endpoints[0].method: ")
        and err.count("\n") == 1
    )


def test_a_missing_env_variable_names_the_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tomli_w

    monkeypatch.delenv("STRESSDECK_TEST_UNSET", raising=False)
    document = crafted_document()
    document["plan"]["profile"]["defaults"] = {
        "headers": {"Authorization": "Bearer ${STRESSDECK_TEST_UNSET}"}
    }
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(document))
    assert main(["replay", str(path)]) == 2
    assert "environment variable STRESSDECK_TEST_UNSET is not set" in capsys.readouterr().err


@pytest.mark.parametrize("ui", [[], ["--ui"]])
def test_replay_refuses_an_unusable_save_file_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ui: list[str]
) -> None:
    """Headless or in the console, the same checks, before anything is sent or drawn."""
    import tomli_w

    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(crafted_document()))
    taken = tmp_path / "taken.toml"
    taken.write_text("mine")
    assert main(["replay", str(path), *ui, "--save", str(taken)]) == 2
    assert "already exists (use --force to overwrite)" in capsys.readouterr().err
    assert taken.read_text() == "mine"
    assert (
        main(["replay", str(path), *ui, "--save", str(taken / "x.toml")]) == 2
    )  # a file is in the way
    assert (
        capsys.readouterr().err
        == f"error: --save: {taken / 'x.toml'}: cannot write ({taken} is not a directory)\n"
    )


# -- steer, with a fake clock ------------------------------------------------------------------


@dataclass
class FakeHandle:
    """Records what a replay asks for and when; time moves only when the replay sleeps."""

    now: float = 0.0
    state: str = RUNNING
    calls: list[tuple[float, str, float | None]] = field(default_factory=list)

    def elapsed(self) -> float:
        return self.now

    def set_users(self, users: int) -> None:
        self.calls.append((self.now, "users", users))

    def set_rate(self, rate: float) -> None:
        self.calls.append((self.now, "rate", rate))

    def pause(self) -> None:
        self.calls.append((self.now, "pause", None))

    def resume(self) -> None:
        self.calls.append((self.now, "resume", None))

    async def stop(self, reason: str = "stopped by user") -> None:
        self.calls.append((self.now, f"stop: {reason}", None))
        self.state = STOPPED


def _early(calls: list[tuple[float, str, float | None]]) -> list[tuple[object, str, float | None]]:
    """Changes are applied EARLY seconds before they are due (see replay.EARLY)."""
    return [(pytest.approx(at - EARLY), what, value) for at, what, value in calls]


@pytest.fixture
def fake_sleep(monkeypatch: pytest.MonkeyPatch) -> FakeHandle:
    handle = FakeHandle()

    async def sleep(seconds: float) -> None:
        handle.now += seconds

    monkeypatch.setattr("stressdeck.sessions.replay.asyncio.sleep", sleep)
    return handle


async def test_steer_applies_each_change_at_its_offset(fake_sleep: FakeHandle) -> None:
    events = [
        ControlEvent(0.5, "users", 7),
        ControlEvent(1.0, "rate", 50.0),
        ControlEvent(1.0, "pause"),
        ControlEvent(2.25, "resume"),
        ControlEvent(3.0, "stop"),
    ]
    await steer(fake_sleep, events)
    assert fake_sleep.calls == _early(
        [
            (0.5, "users", 7),
            (1.0, "rate", 50.0),
            (1.0, "pause", None),
            (2.25, "resume", None),
            (3.0, "stop: replay ended: stopped here in the original run", None),
        ]
    )


async def test_steer_stops_where_an_interrupted_run_stopped(fake_sleep: FakeHandle) -> None:
    await steer(fake_sleep, [ControlEvent(0.5, "pause")], stop_at=1.75)
    assert fake_sleep.calls == _early(
        [(0.5, "pause", None), (1.75, "stop: interrupted here in the original run", None)]
    )


async def test_steer_gives_up_once_the_run_has_ended(fake_sleep: FakeHandle) -> None:
    fake_sleep.state = STOPPED
    await steer(fake_sleep, [ControlEvent(0.5, "users", 3)], stop_at=2.0)
    assert fake_sleep.calls == []


async def test_a_change_already_due_is_applied_at_once(fake_sleep: FakeHandle) -> None:
    fake_sleep.now = 1.0
    await steer(fake_sleep, [ControlEvent(0.2, "users", 3)])
    assert fake_sleep.calls == [(1.0, "users", 3)]
