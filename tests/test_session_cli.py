"""`run --save`, autosave on Ctrl+C, and secrets never reaching any file stressdeck writes."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).parent))

from conftest import ServerThread, counting_app
from session_support import run_sync
from waiting import eventually

from stressdeck.cli import main
from stressdeck.engine import RunHandle
from stressdeck.sessions.session import build_session, load_session, write_session

TOKEN_VAR = "STRESSDECK_TEST_TOKEN"


def secure_app(token: str) -> web.Application:
    """/secure answers 200 only to ``Authorization: Bearer <token>``."""

    async def secure(request: web.Request) -> web.Response:
        ok = request.headers.get("Authorization") == f"Bearer {token}"
        return web.Response(status=200 if ok else 401, text="ok" if ok else "who are you")

    app = web.Application()
    app.router.add_get("/secure", secure)
    return app


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    value = f"tok-{uuid.uuid4().hex}"
    monkeypatch.setenv(TOKEN_VAR, value)
    return value


@pytest.fixture
def secure_url(token: str) -> Iterator[str]:
    with ServerThread(secure_app(token)) as server:
        yield server.url


def write_profile(path: Path, base_url: str, api_key: str) -> Path:
    path.write_text(f'''
name = "secure"
base_url = "{base_url}"
thresholds = ["error_rate < 1%"]

[defaults.headers]
Authorization = "Bearer ${{{TOKEN_VAR}}}"
X-Api-Key = "{api_key}"
User-Agent = "stressdeck-test"

[load]
users = 2
duration = "1s"

[[endpoints]]
name = "secure"
path = "/secure"
expect = [200]
''')
    return path


@pytest.mark.slow
def test_an_env_secret_never_reaches_any_file_written(
    tmp_path: Path, token: str, secure_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    api_key = f"literal-{uuid.uuid4().hex}"
    profile = write_profile(tmp_path / "secure.toml", secure_url, api_key)
    out = tmp_path / "out"
    # error_rate < 1% passing proves the token was expanded and sent, in the run and in the replay.
    assert (
        main(
            [
                "run",
                str(profile),
                "--save",
                str(out / "run.toml"),
                "--json",
                str(out / "run-results.json"),
            ]
        )
        == 0
    )
    assert (
        main(["replay", str(out / "run.toml"), "--save", str(out / "replay.json"), "--quiet"]) == 0
    )
    assert "X-Api-Key were redacted" in capsys.readouterr().err
    assert (
        main(["run", str(profile), "--save", str(out / "kept.json"), "--keep-secrets", "--quiet"])
        == 0
    )
    for session in ("run.toml", "replay.json"):
        assert (
            main(
                [
                    "report",
                    str(out / session),
                    "--html",
                    str(out / f"{session}.html"),
                    "--csv",
                    str(out / f"{session}.csv"),
                    "--junit",
                    str(out / f"{session}.xml"),
                ]
            )
            == 0
        )
    assert main(
        [
            "compare",
            str(out / "run.toml"),
            str(out / "replay.json"),
            "--json",
            str(out / "cmp.json"),
            "--tolerance",
            "1000%",
        ]
    ) in (0, 3, 4)  # 4: a run this short may be too short to measure its noise

    written = sorted(out.iterdir())
    assert len(written) == 11  # 3 sessions, --json results, 2 x 3 reports, the comparison
    for path in written:
        data = path.read_bytes()
        assert token.encode() not in data, path
        if path.name != "kept.json":
            assert api_key.encode() not in data, path
    saved = load_session(out / "run.toml")
    headers = saved.plan.document["defaults"]["headers"]
    assert headers == {
        "Authorization": f"Bearer ${{{TOKEN_VAR}}}",
        "X-Api-Key": "<redacted>",
        "User-Agent": "stressdeck-test",
    }
    assert saved.results.total.requests > 0 and saved.results.total.errors == 0
    assert load_session(out / "replay.json").results.total.errors == 0
    kept = load_session(out / "kept.json").plan.document["defaults"]["headers"]
    assert kept["X-Api-Key"] == api_key and kept["Authorization"] == f"Bearer ${{{TOKEN_VAR}}}"


def test_run_refuses_an_existing_save_file_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ServerThread(counting_app()) as server:
        profile = tmp_path / "p.toml"
        profile.write_text(
            f'name = "p"\nbase_url = "{server.url}"\n[[endpoints]]\nname = "ok"\npath = "/ok"\n'
        )
        taken = tmp_path / "taken.toml"
        taken.write_text("mine")
        assert main(["run", str(profile), "--duration", "1s", "--save", str(taken)]) == 2
        assert (
            capsys.readouterr().err
            == f"error: --save: {taken} already exists (use --force to overwrite)\n"
        )
        assert server.count == 0 and taken.read_text() == "mine"
        assert (
            main(
                [
                    "run",
                    str(profile),
                    "--duration",
                    "500ms",
                    "--save",
                    str(taken),
                    "--force",
                    "--quiet",
                ]
            )
            == 0
        )
        assert 0 < load_session(taken).results.total.requests <= server.count
        assert main(["run", str(profile), "--save", str(tmp_path / "x.yaml")]) == 2


def _interrupt(argv: list[str], cwd: Path, signum: int, *, group: bool = False) -> tuple[Path, str]:
    """Start a headless run, send ``signum`` once it is under way; the kept session and stdout.

    ``group``: to the whole process group, workers included, as a terminal's Ctrl+C or
    systemd's stop do.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "stressdeck", *argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=group,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        while line.startswith("replaying "):
            line = process.stdout.readline()
        assert line.startswith("stressdeck "), line
        assert "users" in process.stdout.readline()  # one progress line: the run is under way
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # Documented in cli/run.py: an interrupted run exits 130 (EXIT_INTERRUPTED), SIGTERM as Ctrl+C.
    assert process.returncode == 130, err
    assert "Traceback" not in err
    saved = [line for line in out.splitlines() if line.startswith("partial session saved: ")]
    assert len(saved) == 1, out
    assert "TOTAL" in out  # the summary is printed before the session is kept
    return cwd / saved[0].removeprefix("partial session saved: "), out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("save", [None, "out/named.json"])
@pytest.mark.slow
def test_a_signal_saves_the_partial_session(tmp_path: Path, save: str | None, signum: int) -> None:
    with ServerThread(counting_app()) as server:
        profile = tmp_path / "p.toml"
        profile.write_text(
            f'name = "p"\nbase_url = "{server.url}"\n[[endpoints]]\nname = "ok"\npath = "/ok"\n'
        )
        argv = ["run", str(profile), "--duration", "30s", "--users", "2"]
        if save:
            argv += ["--save", save]
        path, _ = _interrupt(argv, tmp_path, signum)
        if save:
            assert path == tmp_path / save
        else:
            assert path.parent == tmp_path / "sessions" and path.name.startswith("autosave-")
        assert [p.name for p in path.parent.iterdir()] == [
            path.name
        ]  # no temporary file left behind
        session = load_session(path)
        assert session.results.stop_reason == f"interrupted ({signal.Signals(signum).name})"
        assert (
            0 < session.results.elapsed < 30 and 0 < session.results.total.requests <= server.count
        )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.slow
def test_a_signal_to_the_process_group_with_worker_processes(tmp_path: Path, signum: int) -> None:
    """The workers get the signal too; the session still says the run was interrupted."""
    with ServerThread(counting_app()) as server:
        profile = tmp_path / "p.toml"
        profile.write_text(
            f'name = "p"\nbase_url = "{server.url}"\n[[endpoints]]\nname = "ok"\npath = "/ok"\n'
        )
        argv = [
            "run",
            str(profile),
            "--duration",
            "30s",
            "--users",
            "2",
            "--processes",
            "2",
            "--save",
            "s.toml",
        ]
        path, out = _interrupt(argv, tmp_path, signum, group=True)
    session = load_session(path)
    # Workers ignore SIGINT; SIGTERM kills them, and if their deaths are noticed before the
    # signal, the reason keeps both facts, the signal first.
    pattern = (
        r"interrupted \(SIGINT\)"
        if signum == signal.SIGINT
        else r"interrupted \(SIGTERM\)(; worker \d+ crashed: .+)?"
    )
    assert re.fullmatch(pattern, session.results.stop_reason), session.results.stop_reason
    assert session.results.generator.processes == 2
    assert 0 < session.results.elapsed < 30 and session.results.total.requests > 0
    assert f"elapsed {session.results.elapsed:.2f}s, {session.results.stop_reason}" in out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("save", [None, "replayed.toml"])
@pytest.mark.slow
def test_a_signal_during_replay_saves_the_partial_replay(
    tmp_path: Path, save: str | None, signum: int
) -> None:
    with ServerThread(counting_app()) as server:
        document = {
            "name": "p",
            "base_url": server.url,
            "endpoints": [{"name": "ok", "path": "/ok"}],
            "load": {"users": 1, "duration": "1s"},
        }
        # The original ran 1 s with a live change; its saved profile then asks for 30 s, so the
        # replay is still going when the signal comes.
        session = build_session(*run_sync(document, [(0.3, lambda h: h.set_users(2))]))
        longer = {**session.plan.document, "load": {"users": 1, "duration": "30s"}}
        original = write_session(
            tmp_path / "original.toml",
            replace(session, plan=replace(session.plan, document=longer)),
        )
        argv = ["replay", str(original), "--processes", "1"] + (["--save", save] if save else [])
        path, _ = _interrupt(argv, tmp_path, signum)
    if save:
        assert path == tmp_path / save
    else:
        assert path.parent == tmp_path / "sessions" and path.name.startswith("autosave-")
    session = load_session(path)
    assert session.replay_of == str(original)
    assert session.results.stop_reason == f"interrupted ({signal.Signals(signum).name})"
    assert 0 < session.results.elapsed < 30 and session.results.total.requests > 0


def test_a_crash_mid_run_autosaves_the_partial_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stressdeck.cli.run import run_and_keep
    from stressdeck.engine import build_plan
    from stressdeck.profiles.profile import parse_profile

    async def explode(handle: RunHandle) -> None:
        await eventually(lambda: handle.latest.total.requests > 0, what="requests counted")
        raise RuntimeError("boom")

    monkeypatch.chdir(tmp_path)
    with ServerThread(counting_app()) as server:
        document = {
            "name": "p",
            "base_url": server.url,
            "endpoints": [{"name": "ok", "path": "/ok"}],
            "load": {"users": 2, "duration": "10s"},
        }
        plan = build_plan(parse_profile(document, "p.toml"))
        args = argparse.Namespace(quiet=True, save=None, force=False, keep_secrets=False)
        with pytest.raises(RuntimeError, match="boom"):
            run_and_keep(args, plan, steer=explode)
    out = capsys.readouterr().out
    path = tmp_path / out.strip().removeprefix("partial session saved: ")
    assert path.parent.name == "sessions" and path.name.startswith("autosave-")
    session = load_session(path)
    assert session.results.stop_reason == "internal error: RuntimeError: boom"
    assert session.results.elapsed < 2 and session.results.total.requests > 0
    assert "total/latency" in session.histograms
