"""The command line a newcomer types: a URL instead of a profile (`stressdeck URL`,
`stressdeck run URL`, with curl's -X/-H/-d), `--help` that lists everything, a mistyped
command that suggests the right one, a wrong flag that shows the command's own usage, and
`replay --json`. Runs go to an aiohttp server on 127.0.0.1 that records what it received."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from conftest import ServerThread
from test_ui_support import FixedMonitor, screen_text, wait_for

from stressdeck.cli.console import build_parser as console_parser
from stressdeck.cli.console import console_app
from stressdeck.cli.main import main
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.snapshot import STOPPED

SEEN = web.AppKey("seen", list)


def recording_app() -> web.Application:
    """Answers every request with 201 and keeps (method, path, header, body) of each."""
    app = web.Application()
    app[SEEN] = []

    async def record(request: web.Request) -> web.Response:
        body = await request.text()
        app[SEEN].append((request.method, request.path, request.headers.get("X-Test"), body))
        return web.Response(status=201, text="ok")

    app.router.add_route("*", "/{tail:.*}", record)
    return app


@pytest.fixture
def recorder() -> Iterator[ServerThread]:
    with ServerThread(recording_app()) as server:
        yield server


def test_run_url_sends_the_method_headers_and_body_given(
    recorder: ServerThread, tmp_path: Path, capsys
) -> None:
    results = tmp_path / "r.json"
    code = main(
        [
            "run",
            f"{recorder.url}/items",
            "-X",
            "POST",
            "-H",
            "X-Test: yes",
            "--body",
            '{"name": "x"}',
            "--requests",
            "20",
            "--users",
            "2",
            "--processes",
            "1",
            "--quiet",
            "--json",
            str(results),
        ]
    )
    assert code == 0, capsys.readouterr().err
    seen = recorder.app[SEEN]
    assert len(seen) == 20
    assert set(seen) == {("POST", "/items", "yes", '{"name": "x"}')}
    document = json.loads(results.read_text(encoding="utf-8"))
    assert document["summary"]["total"]["requests"] == 20
    assert document["summary"]["total"]["status_counts"] == {"201": 20}
    assert "POST /items" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "http://127.0.0.1:1/", "-H", "no colon"], '-H: expected "Name: value"'),
        (["run", "http://127.0.0.1:1/", "-X", "FETCH"], "method: expected one of GET"),
        (["run", "ftp://127.0.0.1/x"], "ftp://127.0.0.1/x"),
    ],
)
def test_a_bad_url_request_is_one_line_and_exit_2(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_method_header_and_body_belong_to_a_url(tmp_path: Path, capsys) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(
        'name = "p"\nbase_url = "http://127.0.0.1:1"\n[[endpoints]]\nname = "a"\npath = "/"\n',
        encoding="utf-8",
    )
    assert main(["run", str(profile), "-X", "POST"]) == 2
    assert "go with a URL, not a profile" in capsys.readouterr().err


def test_help_lists_every_command_and_the_console(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "replay", "compare", "report", "import", "demo-server", "presets"):
        assert f"    {command}" in out, command
    for console in ("stressdeck demo", "stressdeck view SESSION", "stressdeck PROFILE|URL"):
        assert console in out, console
    assert "demo       open the console" in out and "view       open a saved" in out


@pytest.mark.parametrize(
    ("typed", "meant"), [("rnu", "run"), ("replya", "replay"), ("veiw", "view")]
)
def test_a_mistyped_command_suggests_the_nearest(typed: str, meant: str, capsys) -> None:
    assert main([typed, "profiles/demo-mix.toml"]) == 2
    err = capsys.readouterr().err
    assert f"unknown command {typed!r}; did you mean {meant!r}?" in err
    assert "unrecognized arguments" not in err


def test_a_wrong_flag_shows_the_commands_own_usage(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "profiles/demo-mix.toml", "--userz", "3"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: stressdeck run ")
    assert "stressdeck run: error: unrecognized arguments: --userz 3" in err


def test_replay_writes_json(recorder: ServerThread, tmp_path: Path, capsys) -> None:
    saved, replayed = tmp_path / "s.toml", tmp_path / "replayed.json"
    argv = ["--requests", "10", "--users", "1", "--processes", "1", "--quiet"]
    assert main(["run", f"{recorder.url}/", *argv, "--save", str(saved)]) == 0
    code = main(["replay", str(saved), "--quiet", "--processes", "1", "--json", str(replayed)])
    assert code == 0, capsys.readouterr().err
    document = json.loads(replayed.read_text(encoding="utf-8"))
    assert document["summary"]["total"]["requests"] == 10
    assert len(recorder.app[SEEN]) == 20  # ten each: the run and its replay


async def test_the_console_opens_a_url_ready_to_run(recorder: ServerThread, tmp_path: Path) -> None:
    args = console_parser().parse_args(
        [
            f"{recorder.url}/health",
            "-H",
            "X-Test: console",
            "--duration",
            "30s",
            "--profiles-dir",
            str(tmp_path),
            "--sessions-dir",
            str(tmp_path / "sessions"),
        ]
    )
    app = console_app(args, args.profile, Overrides.from_args(args))
    app.monitor = FixedMonitor()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "0:00 / 0:30" in screen_text(app))
        assert "GET" in screen_text(app).splitlines()[0]
        await pilot.press("s")
        await wait_for(pilot, lambda: len(recorder.app[SEEN]) > 0)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)
    assert {seen[:3] for seen in recorder.app[SEEN]} == {("GET", "/health", "console")}
