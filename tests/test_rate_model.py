"""`--rate` is never ignored: it selects the open model (refused with `--model closed`), on
the command line, in the console and in the Python API; and a URL on a host that is not this
machine gets a gentle probe, not 10 unthrottled users. Real runs against 127.0.0.1; the
remote default is checked on the plan built, nothing sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ServerThread
from session_support import crafted_document
from test_ui_support import FixedMonitor, screen_text, wait_for

import stressdeck
from stressdeck.cli.console import build_parser as console_parser
from stressdeck.cli.console import console_app
from stressdeck.cli.main import main
from stressdeck.core.errors import InputError
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.plan import build_plan
from stressdeck.engine.snapshot import STOPPED
from stressdeck.profiles.adhoc import REMOTE_LOAD, url_profile
from stressdeck.profiles.profile import parse_profile
from stressdeck.sessions.replay import plan_for_replay
from stressdeck.sessions.session import session_from_document

# Six arrivals at 5/s are 0.2 s apart: the last is due 1.0 s after the first. Ten closed-model
# users (what --rate 5 used to run) send six requests in a few milliseconds.
RATE, REQUESTS, LAST_ARRIVAL = 5, 6, 1.0


def test_rate_alone_runs_the_open_model_at_that_rate(
    target: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "r.json"
    argv = ["run", f"{target.url}/ok", "--rate", str(RATE), "--requests", str(REQUESTS)]
    code = main([*argv, "--processes", "1", "--quiet", "--json", str(results)])
    assert code == 0, capsys.readouterr().err
    document = json.loads(results.read_text(encoding="utf-8"))
    assert document["model"] == "open"
    assert document["summary"]["total"]["requests"] == REQUESTS == target.count
    assert document["elapsed"] >= LAST_ARRIVAL


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--rate", "5", "--model", "closed"], "--rate: is the open model's arrival rate"),
        (["--users", "3", "--model", "open"], "--users: is the closed model's"),
        (["--rate", "5", "--users", "3"], "--rate: goes with the open model and --users"),
    ],
)
def test_a_rate_or_users_against_the_model_is_one_line_and_exit_2(
    options: list[str], message: str, target: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", f"{target.url}/ok", *options, "--processes", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert target.count == 0


def test_help_says_rate_selects_the_open_model(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "requests per second; selects the open model (refused with --model closed)" in out
    assert "virtual users; selects the closed model" in out


def test_the_api_rate_keyword_selects_the_open_model(target: ServerThread) -> None:
    results = stressdeck.run(
        {"name": "p", "base_url": target.url, "endpoints": [{"name": "ok", "path": "/ok"}]},
        rate=RATE,
        requests=REQUESTS,
        processes=1,
    )
    assert results.model == "open"
    assert results.total.requests == REQUESTS == target.count
    assert results.elapsed >= LAST_ARRIVAL
    with pytest.raises(InputError, match="--rate: is the open model's"):
        stressdeck.run(
            {"name": "p", "base_url": target.url, "endpoints": [{"name": "ok", "path": "/ok"}]},
            rate=RATE,
            model="closed",
            processes=1,
        )
    assert target.count == REQUESTS


async def test_the_console_shows_the_rate_it_will_run_before_s(
    target: ServerThread, tmp_path: Path
) -> None:
    args = console_parser().parse_args(
        [f"{target.url}/ok", "--rate", "5", "--duration", "2s", "--profiles-dir", str(tmp_path)]
        + ["--sessions-dir", str(tmp_path / "sessions")]
    )
    app = console_app(args, args.profile, Overrides.from_args(args))
    app.monitor = FixedMonitor()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: "open, 5/s" in screen_text(app))
        assert target.count == 0
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED, timeout=30)
    final = app.controller.latest()
    assert final.model == "open"
    total = final.total
    assert target.count == total.requests + total.cancelled
    assert final.rate == RATE  # the rate in force, as the header said before s
    # One arrival each 0.2 s while the run lasted (a second of slack: the workers' clock
    # starts a little before the run's on a busy machine): a dozen, not thousands.
    assert total.requests + total.cancelled + total.dropped <= RATE * (final.elapsed + 1)


REMOTE = "http://staging.invalid/health"  # planned only: nothing is ever sent to it


def test_a_remote_url_is_probed_gently_unless_asked_for_more() -> None:
    plan = build_plan(url_profile(REMOTE))
    assert (plan.load.model, plan.load.rate) == ("open", REMOTE_LOAD["rate"])
    users = build_plan(url_profile(REMOTE), Overrides(users=20))
    assert (users.load.model, users.load.users) == ("closed", 20)
    closed = build_plan(url_profile(REMOTE), Overrides(model="closed"))
    assert (closed.load.model, closed.load.users) == ("closed", 1)
    faster = build_plan(url_profile(REMOTE), Overrides(rate=50.0))
    assert (faster.load.model, faster.load.rate) == ("open", 50.0)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]/"])
def test_a_loopback_url_keeps_the_usual_default(url: str) -> None:
    plan = build_plan(url_profile(url))
    assert (plan.load.model, plan.load.users, plan.load.rate) == ("closed", 10, None)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"users": 2, "rate": 50.0}, ("closed", 2, None)),
        ({"rate": 50.0}, ("closed", 10, None)),
    ],
)
def test_an_older_session_with_an_ignored_rate_replays_what_ran(
    overrides: dict[str, float], expected: tuple[str, int, float | None]
) -> None:
    """Sessions saved before --rate chose the open model hold a rate the closed run ignored:
    the replay runs the closed model it recorded (the plan only; nothing is sent)."""
    document = crafted_document()
    document["plan"]["overrides"].update(overrides)
    session = session_from_document(document, "old.json")
    assert session.plan.load.model == "closed"
    load = plan_for_replay(session, "old.json").load
    assert (load.model, load.users, load.rate) == expected


@pytest.mark.parametrize(
    ("load", "model"),
    [
        ({"rate": 5}, "open"),  # a rate alone is a rate, never ignored behind 10 users
        ({"rate": 5, "model": "open"}, "open"),
        ({"users": 3}, "closed"),
        ({}, "closed"),
    ],
)
def test_a_profile_rate_without_a_model_is_the_open_model(
    load: dict[str, object], model: str
) -> None:
    document = {"name": "p", "base_url": "http://127.0.0.1:9", "load": load}
    document["endpoints"] = [{"name": "x", "path": "/x"}]
    plan = build_plan(parse_profile(document, "p.toml"))
    assert plan.load.model == model
    if "rate" in load:
        assert plan.load.rate == 5


def test_a_session_whose_profile_rate_ran_closed_replays_closed() -> None:
    """Before a rate alone in a profile meant the open model, it ran closed (the rate
    ignored): its replay runs the closed model it recorded (the plan only; nothing is sent)."""
    document = crafted_document()
    document["plan"]["profile"]["load"] = {"rate": 50.0, "duration": "2s"}
    session = session_from_document(document, "old.json")
    assert session.plan.load.model == "closed"
    assert plan_for_replay(session, "old.json").load.model == "closed"


@pytest.mark.parametrize(
    ("load", "message"),
    [
        (
            {"model": "closed", "rate": 5},
            'load.rate: the closed model takes no rate; set model = "open" or remove rate',
        ),
        (
            {"users": 3, "rate": 5},
            "load.rate: a rate is the open model's and users the closed model's; "
            'set model = "open" or remove rate',
        ),
    ],
)
def test_a_profile_rate_beside_the_closed_model_is_one_line_and_exit_2(
    load: dict[str, object],
    message: str,
    target: ServerThread,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The closed model would ignore the rate and send unthrottled: refused, nothing sent."""
    profile = tmp_path / "p.toml"
    lines = [f"{key} = {json.dumps(value)}" for key, value in load.items()]
    profile.write_text(
        f'name = "p"\nbase_url = "{target.url}"\n[load]\n'
        + "\n".join(lines)
        + '\n[[endpoints]]\nname = "ok"\npath = "/ok"\n',
        encoding="utf-8",
    )
    assert main(["run", str(profile), "--processes", "1", "--duration", "1s"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {profile}: {message}\n"
    assert target.count == 0


@pytest.mark.parametrize(
    ("load", "overrides", "expected"),
    [
        ({"model": "closed", "users": 4, "rate": 50.0}, {}, ("closed", 4, None)),
        ({"users": 4, "rate": 50.0}, {}, ("closed", 4, None)),
        ({"model": "closed", "users": 4, "rate": 50.0}, {"model": "open"}, ("open", 4, 50.0)),
    ],
)
def test_a_session_whose_profile_had_a_rate_beside_the_closed_model_still_replays(
    load: dict[str, object], overrides: dict[str, str], expected: tuple[str, int, float | None]
) -> None:
    """Saved before such profiles were refused: the replay runs the model that ran (closed:
    the rate was ignored; ``--model open``: the profile's rate), nothing sent."""
    document = crafted_document()
    document["plan"]["profile"]["load"] = {**load, "duration": "2s"}
    document["plan"]["overrides"].update(overrides)
    document["plan"]["load"].update(
        {"model": expected[0], "users": expected[1], "rate": expected[2]}
    )
    session = session_from_document(document, "old.json")
    plan = plan_for_replay(session, "old.json")
    assert (plan.load.model, plan.load.users, plan.load.rate) == expected
