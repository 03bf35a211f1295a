"""TLS failures said right: the console's "target not answering" banner when every request
fails TLS ("tls: unknown issuer" is a tls error), a bad key, passphrase or missing key blamed
on the flag or field at fault (not "[SSL] PEM lib" on the certificate), and a hint beside
400 answers from a server that wants a client certificate. HTTPS on 127.0.0.1 with the
test CA of tests/certs.py."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from certs import Issued, TestCA
from conftest import ServerThread, counting_app
from test_ui_support import FixedMonitor, sample_snapshot, screen_text, wait_for

from stressdeck.cli.main import main
from stressdeck.core.errors import InputError
from stressdeck.engine import build_plan
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.snapshot import STOPPED, EndpointSummary
from stressdeck.profiles.profile import parse_profile
from stressdeck.ui.answering import AnsweringWatch
from stressdeck.ui.app import StressDeckApp
from stressdeck.ui.options import ConsoleOptions
from stressdeck.ui.planning import PlanSource

PASSPHRASE = "s3cret-Passphrase"


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path)


def server_context(ca: TestCA, *, client_certificate: int = ssl.CERT_NONE) -> ssl.SSLContext:
    issued = ca.issue("server", ("localhost", "127.0.0.1"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.cert, issued.key)
    context.verify_mode = client_certificate
    if client_certificate != ssl.CERT_NONE:
        context.load_verify_locations(ca.path)
    return context


@pytest.fixture
def https(ca: TestCA) -> Iterator[ServerThread]:
    with ServerThread(counting_app(), server_context(ca)) as server:
        yield server


# -- the banner ----------------------------------------------------------------------------


async def test_every_request_failing_tls_shows_the_not_answering_banner(
    https: ServerThread, tmp_path: Path
) -> None:
    """No CA given: the test CA is unknown, so every request fails as "tls: unknown issuer"."""
    profile = tmp_path / "p.toml"
    profile.write_text(
        f'name = "p"\nbase_url = "{https.url}"\n[load]\nusers = 1\nduration = "30s"\n'
        '[[endpoints]]\nname = "ok"\npath = "/ok"\n',
        encoding="utf-8",
    )
    source = PlanSource.from_file(profile, Overrides(), max_duration=30.0)
    app = StressDeckApp(source, ConsoleOptions(monitor=FixedMonitor(), sessions_dir=tmp_path / "s"))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.renders > 0)
        await pilot.press("s")
        await wait_for(pilot, lambda: "target not answering" in screen_text(app), timeout=15)
        total = app.controller.latest().total
        assert set(total.error_counts) == {"tls: unknown issuer"} and not total.status_counts
        await pilot.press("s")
        await wait_for(pilot, lambda: app.controller.state == STOPPED)
    assert https.count == 0


@pytest.mark.parametrize(
    "error_class",
    ["tls", "tls: unknown issuer", "tls: expired", "tls: wrong host", "connect", "timeout"],
)
def test_every_no_answer_class_with_a_reason_counts_as_no_answer(error_class: str) -> None:
    watch = AnsweringWatch()
    said = None
    for second in range(5):
        n = 100 * (second + 1)
        total = EndpointSummary("total", requests=n, errors=n, error_counts={error_class: n})
        said = watch.update(sample_snapshot(elapsed=float(second), total=total))
    assert said is not None and "every request for" in said


# -- files and passphrases blamed right ---------------------------------------------------


def cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert PASSPHRASE not in err and "PEM lib" not in err
    return err


@pytest.fixture
def client_files(ca: TestCA, tmp_path: Path) -> dict[str, Any]:
    plain = ca.issue("client", ("load-tester",), client=True)
    locked = ca.issue("locked", ("load-tester",), client=True, password=PASSPHRASE.encode())
    other = ca.issue("other", ("someone",), client=True)
    junk = tmp_path / "junk.pem"
    junk.write_text("not PEM at all\n", encoding="utf-8")
    return {"plain": plain, "locked": locked, "other": other, "junk": junk}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("cert without key", "--tls-key: missing: the certificate file "),
        ("wrong passphrase", "--tls-key-password-env: wrong passphrase: it does not open the key"),
        (
            "no passphrase",
            "--tls-key-password-env: missing: the key is encrypted with a passphrase",
        ),
        ("key of another cert", "--tls-key: is not the key of the certificate (cert_file)"),
        ("junk key", "--tls-key: cannot load it: no PEM private key in it"),
        ("junk cert", "--tls-cert: cannot load it: no PEM certificate in it"),
    ],
)
def test_a_tls_mistake_on_the_command_line_names_the_flag(
    case: str,
    expected: str,
    client_files: dict[str, Any],
    https: ServerThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plain: Issued = client_files["plain"]
    locked: Issued = client_files["locked"]
    monkeypatch.setenv("KEY_PW", "not the passphrase")
    options = {
        "cert without key": ["--tls-cert", str(plain.cert)],
        "wrong passphrase": ["--tls-cert", str(locked.cert), "--tls-key", str(locked.key)]
        + ["--tls-key-password-env", "KEY_PW"],
        "no passphrase": ["--tls-cert", str(locked.cert), "--tls-key", str(locked.key)],
        "key of another cert": ["--tls-cert", str(plain.cert)]
        + ["--tls-key", str(client_files["other"].key)],
        "junk key": ["--tls-cert", str(plain.cert), "--tls-key", str(client_files["junk"])],
        "junk cert": ["--tls-cert", str(client_files["junk"]), "--tls-key", str(plain.key)],
    }[case]
    err = cli_error(["run", f"{https.url}/ok", "--requests", "1", *options], capsys)
    assert expected in err, err
    assert https.count == 0


def test_a_tls_mistake_in_a_profile_names_the_field(
    client_files: dict[str, Any], tmp_path: Path
) -> None:
    locked: Issued = client_files["locked"]

    def error(tls: dict[str, str], env: dict[str, str]) -> str:
        document = {
            "name": "t",
            "base_url": "https://127.0.0.1:1",
            "tls": tls,
            "endpoints": [{"name": "a", "path": "/"}],
        }
        with pytest.raises(InputError) as caught:
            build_plan(parse_profile(document, str(tmp_path / "p.toml")), env=env)
        return caught.value.line()

    files = {"cert_file": str(locked.cert), "key_file": str(locked.key)}
    wrong = error({**files, "key_password": "${PW}"}, {"PW": "nope"})
    assert wrong.endswith("p.toml: tls.key_password: wrong passphrase: it does not open the key")
    missing = error(files, {})
    assert missing.endswith("tls.key_password: missing: the key is encrypted with a passphrase")
    alone = error({"cert_file": str(client_files["plain"].cert)}, {})
    assert "tls.key_file: missing: the certificate file" in alone
    # The right passphrase loads.
    plan = build_plan(
        parse_profile(
            {
                "name": "t",
                "base_url": "https://127.0.0.1:1",
                "tls": {**files, "key_password": "${PW}"},
                "endpoints": [{"name": "a", "path": "/"}],
            },
            str(tmp_path / "p.toml"),
        ),
        env={"PW": PASSPHRASE},
    )
    assert plan.tls is not None and plan.tls.key_file == str(locked.key)


# -- a 400 from a server that wants a client certificate -----------------------------------


def wants_client_certificate_app() -> web.Application:
    """As nginx with ``ssl_verify_client on``: the handshake asks for a certificate but goes
    on without one, and the answer is 400 "No required SSL certificate was sent"."""
    app = counting_app()

    async def guarded(request: web.Request) -> web.Response:
        assert request.transport is not None
        if not request.transport.get_extra_info("peercert"):
            return web.Response(status=400, text="400 No required SSL certificate was sent")
        return web.Response(text="ok")

    app.router.add_get("/guarded", guarded)
    return app


@pytest.fixture
def guarded(ca: TestCA) -> Iterator[ServerThread]:
    context = server_context(ca, client_certificate=ssl.CERT_OPTIONAL)
    with ServerThread(wants_client_certificate_app(), context) as server:
        yield server


HINT = "hint: 400 over HTTPS is what a server that wants a client certificate answers"


def test_400s_from_a_server_that_wants_a_client_certificate_get_a_hint(
    guarded: ServerThread,
    ca: TestCA,
    client: str,
    client_files: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["run", f"{guarded.url}/guarded", "--tls-ca", str(ca.path), "--client", client]
    argv += ["--requests", "6", "--users", "1", "--processes", "1", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "status codes: 400: 6" in out and HINT in out
    assert guarded.count == 6
    plain: Issued = client_files["plain"]
    assert main([*argv, "--tls-cert", str(plain.cert), "--tls-key", str(plain.key)]) == 0
    out = capsys.readouterr().out
    assert "status codes: 200: 6" in out and "hint:" not in out
    assert guarded.count == 12


def test_no_hint_for_a_400_over_plain_http(target: ServerThread, capsys) -> None:
    argv = ["run", f"{target.url}/status/400", "--requests", "3", "--users", "1"]
    assert main([*argv, "--processes", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "status codes: 400: 3" in out and "hint:" not in out
