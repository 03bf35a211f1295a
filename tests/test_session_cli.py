"""`run --save`, autosave on Ctrl+C, and secrets never reaching any file stressdeck writes."""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).parent))

from conftest import ServerThread, counting_app  # noqa: E402

from stressdeck.cli import main  # noqa: E402
from stressdeck.session import load_session  # noqa: E402

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


def test_an_env_secret_never_reaches_any_file_written(tmp_path: Path, token: str, secure_url: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    api_key = f"literal-{uuid.uuid4().hex}"
    profile = write_profile(tmp_path / "secure.toml", secure_url, api_key)
    out = tmp_path / "out"
    # error_rate < 1% passing proves the token was expanded and sent, in the run and in the replay.
    assert main(["run", str(profile), "--save", str(out / "run.toml"), "--json", str(out / "run-results.json")]) == 0
    assert main(["replay", str(out / "run.toml"), "--save", str(out / "replay.json"), "--quiet"]) == 0
    assert "X-Api-Key were redacted" in capsys.readouterr().err
    assert main(["run", str(profile), "--save", str(out / "kept.json"), "--keep-secrets", "--quiet"]) == 0
    for session in ("run.toml", "replay.json"):
        assert main(["report", str(out / session), "--html", str(out / f"{session}.html"),
                     "--csv", str(out / f"{session}.csv"), "--junit", str(out / f"{session}.xml")]) == 0
    assert main(["compare", str(out / "run.toml"), str(out / "replay.json"), "--json", str(out / "cmp.json"),
                 "--tolerance", "1000%"]) in (0, 3)

    written = sorted(out.iterdir())
    assert len(written) == 11  # 3 sessions, --json results, 2 x 3 reports, the comparison
    for path in written:
        data = path.read_bytes()
        assert token.encode() not in data, path
        if path.name != "kept.json":
            assert api_key.encode() not in data, path
    saved = load_session(out / "run.toml")
    headers = saved.plan.document["defaults"]["headers"]
    assert headers == {"Authorization": f"Bearer ${{{TOKEN_VAR}}}", "X-Api-Key": "<redacted>",
                       "User-Agent": "stressdeck-test"}
    assert saved.results.total.requests > 0 and saved.results.total.errors == 0
    assert load_session(out / "replay.json").results.total.errors == 0
    kept = load_session(out / "kept.json").plan.document["defaults"]["headers"]
    assert kept["X-Api-Key"] == api_key and kept["Authorization"] == f"Bearer ${{{TOKEN_VAR}}}"


def test_run_refuses_an_existing_save_file_before_running(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    with ServerThread(counting_app()) as server:
        profile = tmp_path / "p.toml"
        profile.write_text(f'name = "p"\nbase_url = "{server.url}"\n[[endpoints]]\nname = "ok"\npath = "/ok"\n')
        taken = tmp_path / "taken.toml"
        taken.write_text("mine")
        assert main(["run", str(profile), "--duration", "1s", "--save", str(taken)]) == 2
        assert capsys.readouterr().err == f"error: --save: {taken} already exists (use --force to overwrite)\n"
        assert server.count == 0 and taken.read_text() == "mine"
        assert main(["run", str(profile), "--duration", "500ms", "--save", str(taken), "--force", "--quiet"]) == 0
        assert 0 < load_session(taken).results.total.requests <= server.count
        assert main(["run", str(profile), "--save", str(tmp_path / "x.yaml")]) == 2


@pytest.mark.parametrize("save", [None, "named.json"])
def test_ctrl_c_saves_the_partial_session(tmp_path: Path, save: str | None) -> None:
    with ServerThread(counting_app()) as server:
        profile = tmp_path / "p.toml"
        profile.write_text(f'name = "p"\nbase_url = "{server.url}"\n[[endpoints]]\nname = "ok"\npath = "/ok"\n')
        argv = [sys.executable, "-m", "stressdeck", "run", str(profile), "--duration", "30s", "--users", "2"]
        if save:
            argv += ["--save", save]
        process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            assert process.stdout.readline().startswith("stressdeck ")
            assert "users" in process.stdout.readline()  # one progress line: the run is under way
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 130, err
        saved = [line for line in out.splitlines() if line.startswith("partial session saved: ")]
        assert len(saved) == 1, out
        path = tmp_path / saved[0].removeprefix("partial session saved: ")
        if save:
            assert path == tmp_path / save
        else:
            assert path.parent == tmp_path / "sessions" and path.name.startswith("autosave-")
        session = load_session(path)
        assert session.results.stop_reason == "interrupted"
        assert 0 < session.results.elapsed < 30 and session.results.total.requests > 0


def test_a_crash_mid_run_autosaves_the_partial_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from stressdeck.cli import run_and_keep
    from stressdeck.engine import build_plan
    from stressdeck.profile import parse_profile

    async def explode(handle: object) -> None:
        await asyncio.sleep(0.6)
        raise RuntimeError("boom")

    monkeypatch.chdir(tmp_path)
    with ServerThread(counting_app()) as server:
        document = {"name": "p", "base_url": server.url, "endpoints": [{"name": "ok", "path": "/ok"}],
                    "load": {"users": 2, "duration": "10s"}}
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
