"""TLS with both clients: a CA bundle, mutual TLS, a server name, and failures that say why.

Each test makes its own CA and certificates in tmp_path and serves HTTPS on 127.0.0.1; every
count is checked against what the server received.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from certs import TestCA
from conftest import ServerThread, counting_app

from stressdeck.core.errors import InputError
from stressdeck.engine import Snapshot, build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.results import Results
from stressdeck.profiles.profile import parse_profile
from stressdeck.sessions.summary import summary_text

REQUESTS = 20


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path)


def server_context(
    ca: TestCA,
    *,
    names: tuple[str, ...] = ("localhost", "127.0.0.1"),
    expired: bool = False,
    require_client: bool = False,
) -> ssl.SSLContext:
    issued = ca.issue("server", names, expired=expired)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.cert, issued.key)
    if require_client:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(ca.path)
    return context


@pytest.fixture
def https(request: pytest.FixtureRequest, ca: TestCA) -> Iterator[ServerThread]:
    options = getattr(request, "param", {})
    with ServerThread(counting_app(), server_context(ca, **options)) as server:
        yield server


def tls_plan(
    url: str, tmp_path: Path, client: str, tls: dict[str, Any] | None = None, **document: Any
) -> Any:
    profile = {
        "name": "tls",
        "base_url": url,
        "load": {"users": 2, "requests": REQUESTS},
        "endpoints": [{"name": "ok", "path": "/ok"}],
        **({"tls": tls} if tls is not None else {}),
        **document,
    }
    return build_plan(
        parse_profile(profile, str(tmp_path / "tls.toml")),
        Overrides(client=client),
        env={"KEY_PW": "s3cret"},
    )


async def run(plan: Any) -> Snapshot:
    return await (await start(plan)).wait()


async def test_a_ca_file_verifies_the_server(
    https: ServerThread, ca: TestCA, tmp_path: Path, client: str
) -> None:
    final = await run(tls_plan(https.url, tmp_path, client, {"ca_file": ca.path.name}))
    assert final.total.status_counts == {200: REQUESTS} and final.total.errors == 0
    assert https.count == REQUESTS
    assert final.endpoints[0].client == client


async def test_an_unknown_issuer_is_named(https: ServerThread, tmp_path: Path, client: str) -> None:
    final = await run(tls_plan(https.url, tmp_path, client))
    assert final.total.error_counts == {"tls: unknown issuer": REQUESTS}
    assert https.count == 0  # no request got past the handshake
    assert "tls: unknown issuer: 20" in summary_text(final)
    assert Results.from_snapshot(final).to_dict()["summary"]["total"]["error_counts"] == {
        "tls: unknown issuer": REQUESTS
    }


@pytest.mark.parametrize("https", [{"expired": True}], indirect=True)
async def test_an_expired_certificate_is_named(
    https: ServerThread, ca: TestCA, tmp_path: Path, client: str
) -> None:
    final = await run(tls_plan(https.url, tmp_path, client, {"ca_file": str(ca.path)}))
    assert final.total.error_counts == {"tls: expired": REQUESTS} and https.count == 0


@pytest.mark.parametrize("https", [{"names": ("staging.test",)}], indirect=True)
async def test_a_wrong_host_is_named_and_server_name_fixes_it(
    https: ServerThread, ca: TestCA, tmp_path: Path, client: str
) -> None:
    wrong = await run(tls_plan(https.url, tmp_path, client, {"ca_file": str(ca.path)}))
    assert wrong.total.error_counts == {"tls: wrong host": REQUESTS} and https.count == 0
    named = {"ca_file": str(ca.path), "server_name": "staging.test"}
    right = await run(tls_plan(https.url, tmp_path, client, named))
    assert right.total.status_counts == {200: REQUESTS} and https.count == REQUESTS


async def test_insecure_skips_verification(
    https: ServerThread, tmp_path: Path, client: str
) -> None:
    final = await run(tls_plan(https.url, tmp_path, client, insecure=True))
    assert final.total.status_counts == {200: REQUESTS} and https.count == REQUESTS


@pytest.mark.parametrize("https", [{"require_client": True}], indirect=True)
async def test_mutual_tls_with_a_passphrase_from_the_environment(
    https: ServerThread, ca: TestCA, tmp_path: Path, client: str
) -> None:
    issued = ca.issue("client", ("load-tester",), client=True, password=b"s3cret")
    tls = {
        "ca_file": str(ca.path),
        "cert_file": str(issued.cert),
        "key_file": str(issued.key),
        "key_password": "${KEY_PW}",
    }
    final = await run(tls_plan(https.url, tmp_path, client, tls))
    assert final.total.status_counts == {200: REQUESTS} and https.count == REQUESTS


@pytest.mark.parametrize("https", [{"require_client": True}], indirect=True)
async def test_a_missing_client_certificate_is_a_counted_disconnect(
    https: ServerThread, ca: TestCA, tmp_path: Path, client: str
) -> None:
    # In TLS 1.3 the server checks the client's certificate after the client's handshake is
    # done: the client has sent its request when the server hangs up, and sees a close.
    final = await run(tls_plan(https.url, tmp_path, client, {"ca_file": str(ca.path)}))
    assert final.total.error_counts == {"disconnect": REQUESTS}
    assert https.count == 0


def test_tls_mistakes_are_one_line_naming_the_field(ca: TestCA, tmp_path: Path) -> None:
    def error(tls: dict[str, Any], **overrides: Any) -> str:
        profile = {
            "name": "t",
            "base_url": "https://127.0.0.1:1",
            "tls": tls,
            "endpoints": [{"name": "a", "path": "/"}],
        }
        with pytest.raises(InputError) as caught:
            build_plan(
                parse_profile(profile, str(tmp_path / "p.toml")), Overrides(**overrides), env={}
            )
        return str(caught.value)

    assert "tls.key_password" in error({"cert_file": "c.pem", "key_password": "hunter2"})
    assert "hunter2" not in error({"cert_file": "c.pem", "key_password": "hunter2"})
    assert "tls.ca_file: file not found" in error({"ca_file": "nope.pem"})
    (tmp_path / "junk.pem").write_text("not a certificate")
    assert "tls.cert_file: cannot load it" in error({"cert_file": "junk.pem"})
    issued = ca.issue("client", ("x",), client=True, password=b"right")
    wrong = {"cert_file": str(issued.cert), "key_file": str(issued.key), "key_password": "${PW}"}
    assert "PW is not set" in error(wrong)
    # An encrypted key without its passphrase: the passphrase is at fault, not the certificate.
    assert "tls.key_password: missing: the key is encrypted" in error(
        {"cert_file": str(issued.cert), "key_file": str(issued.key)}
    )
    assert "--tls-ca: file not found" in error({}, tls_ca_file=str(tmp_path / "missing.pem"))
    assert "tls.unknown: unknown key" in error({"unknown": "x"})
