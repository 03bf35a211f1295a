"""Request hooks: the user's own function signs every request; a server that checks each
signature accepts them all, in a worker thread and in worker processes alike."""

from __future__ import annotations

import hashlib
import hmac
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import ServerThread

from stressdeck.core.errors import InputError
from stressdeck.engine import Snapshot, build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.profiles.profile import parse_profile

SECRET = b"s3cret"
VERDICTS = web.AppKey("verdicts", Counter)

SIGNING_HOOK = """
import hashlib, hmac

def sign(request, variables):
    body = request.body or b""
    message = request.method.encode() + b" " + request.url.encode() + b"\\n" + body
    digest = hmac.new(b"s3cret", message, hashlib.sha256).hexdigest()
    request.headers.append(("X-Signature", digest))
    request.headers.append(("X-User", variables.get("who", "nobody")))

def broken(request, variables):
    raise RuntimeError("token service unavailable")

def wrong(request, variables):
    return "not a request"
"""


def verifying_app() -> web.Application:
    """Answers 200 to a request whose X-Signature is the HMAC of method, URL and body; 401
    otherwise; counts its verdicts."""
    verdicts: Counter[str] = Counter()
    app = web.Application()
    app[VERDICTS] = verdicts

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        message = request.method.encode() + b" " + str(request.url).encode() + b"\n" + body
        expected = hmac.new(SECRET, message, hashlib.sha256).hexdigest()
        if hmac.compare_digest(request.headers.get("X-Signature", ""), expected):
            verdicts["valid"] += 1
            return web.Response(text="ok")
        verdicts["invalid"] += 1
        return web.Response(status=401, text="bad signature")

    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture
def verifier() -> Iterator[ServerThread]:
    with ServerThread(verifying_app()) as server:
        yield server


def plan_in(tmp_path: Path, url: str, hooks: str, **extra: Any) -> Any:
    (tmp_path / "signing.py").write_text(textwrap.dedent(SIGNING_HOOK))
    document = {
        "name": "signed",
        "base_url": url,
        "hooks": hooks,
        "load": {"users": 3, "requests": 60},
        "endpoints": [
            {"name": "read", "path": "/items?limit=3"},
            {"name": "write", "method": "POST", "path": "/items", "json": {"name": "x"}},
        ],
        **extra,
    }
    return build_plan(parse_profile(document, str(tmp_path / "signed.toml")), Overrides())


async def run(plan: Any, processes: int = 1) -> Snapshot:
    return await (await start(plan, processes)).wait()


@pytest.mark.parametrize("processes", [1, 2])
async def test_every_request_is_signed_and_verified(
    verifier: ServerThread, tmp_path: Path, processes: int
) -> None:
    final = await run(plan_in(tmp_path, verifier.url, "signing:sign"), processes)
    verdicts = verifier.app[VERDICTS]
    assert final.total.errors == 0, final.total.error_messages
    assert verdicts == {"valid": 60}
    assert final.total.requests == 60


async def test_a_hook_that_raises_is_its_own_error_class(
    verifier: ServerThread, tmp_path: Path
) -> None:
    final = await run(plan_in(tmp_path, verifier.url, "signing:broken"))
    assert final.total.requests == 60 == final.total.errors
    assert final.total.error_counts == {"hook": 60}
    assert set(final.total.error_messages) == {"hook: RuntimeError: token service unavailable"}
    assert sum(verifier.app[VERDICTS].values()) == 0  # nothing reached the target


async def test_a_hook_that_returns_nonsense_is_a_hook_error(
    verifier: ServerThread, tmp_path: Path
) -> None:
    final = await run(plan_in(tmp_path, verifier.url, "signing:wrong"))
    assert final.total.error_counts == {"hook": 60}
    (message,) = final.total.error_messages
    assert "returned str, expected a HookRequest or None" in message


@pytest.mark.parametrize(
    ("hooks", "message"),
    [
        ("signing", 'hooks: expected "module:function"'),
        ("no_such_module:sign", "hooks: cannot import no_such_module"),
        ("signing:nothing", "hooks: signing has no function nothing"),
    ],
)
def test_a_hook_that_cannot_be_found_is_one_line(tmp_path: Path, hooks: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        plan_in(tmp_path, "http://127.0.0.1:9", hooks)
    assert message in str(caught.value) and "\n" not in str(caught.value)


async def test_an_endpoints_own_hook_wins_over_the_profiles(
    verifier: ServerThread, tmp_path: Path
) -> None:
    plan = plan_in(
        tmp_path,
        verifier.url,
        "signing:broken",
        endpoints=[{"name": "read", "path": "/items", "hooks": "signing:sign"}],
    )
    final = await run(plan)
    assert final.total.errors == 0 and verifier.app[VERDICTS] == {"valid": 60}
