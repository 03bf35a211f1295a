"""Compression, asked for and measured (issue 25 §3), on both HTTP clients.

An aiohttp.web target compresses its answers when the request asks (``compress = true`` or
the profile's own Accept-Encoding): checks and extracts read the decoded body, ``bytes`` is
what came over the wire and ``decoded_bytes`` what it decoded to. A body that does not decode,
or decodes past DECODED_CAP (a decompression bomb), is a ``decode`` error, in bounded memory.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import psutil
import pytest
from aiohttp import web
from conftest import ServerThread

from stressdeck.engine import build_plan, start
from stressdeck.engine.decoding import DECODED_CAP
from stressdeck.engine.overrides import Overrides
from stressdeck.profiles.profile import parse_profile

DOCUMENT = json.dumps({"token": "abc123", "pad": "x" * 20_000}).encode()
REQUESTS = 20
# A gzip of zeros decoding to 64 MiB past the cap: ~130 KiB on the wire.
BOMB = gzip.compress(b"\0" * (DECODED_CAP + 64 * 2**20), compresslevel=9)
BOMBS = 4  # each one decodes 64 MiB before it is refused: a few are enough
RSS_LIMIT_MB = 60.0
SEEN = web.AppKey("seen", dict)


def compressing_app() -> web.Application:
    app = web.Application()
    seen: dict[str, list[str]] = {"accept-encoding": []}

    async def document(request: web.Request) -> web.Response:
        seen["accept-encoding"].append(request.headers.get("Accept-Encoding", ""))
        response = web.Response(body=DOCUMENT, content_type="application/json")
        response.enable_compression()  # gzip or deflate, as the request asks; else none
        return response

    async def raw_deflate(request: web.Request) -> web.Response:
        squeezer = zlib.compressobj(wbits=-15)  # deflate without the zlib header
        body = squeezer.compress(DOCUMENT) + squeezer.flush()
        return web.Response(body=body, headers={"Content-Encoding": "deflate"})

    async def bomb(request: web.Request) -> web.Response:
        return web.Response(body=BOMB, headers={"Content-Encoding": "gzip"})

    async def garbage(request: web.Request) -> web.Response:
        return web.Response(body=b"this is not gzip", headers={"Content-Encoding": "gzip"})

    app.router.add_get("/doc", document)
    app.router.add_get("/raw-deflate", raw_deflate)
    app.router.add_get("/bomb", bomb)
    app.router.add_get("/garbage", garbage)
    app[SEEN] = seen
    return app


def plan_for(
    url: str, endpoint: dict[str, Any], client: str, requests: int = REQUESTS, **defaults: Any
) -> Any:
    document = {
        "name": "compression",
        "base_url": url,
        "defaults": defaults,
        "load": {"model": "closed", "users": 2, "requests": requests},
        "endpoints": [{"name": "ep", **endpoint}],
    }
    return build_plan(
        parse_profile(document, "compress.toml"), Overrides(client=client), max_duration=30.0
    )


CHECKS = ["body contains 'abc123'", "$.token == 'abc123'"]


@pytest.mark.parametrize(
    ("how", "endpoint", "defaults", "asked"),
    [
        ("endpoint", {"compress": True}, {}, "gzip, deflate"),
        ("defaults", {}, {"compress": True}, "gzip, deflate"),
        ("own-header", {"headers": {"Accept-Encoding": "deflate"}}, {}, "deflate"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_a_compressed_answer_is_checked_decoded(
    client: str, how: str, endpoint: dict[str, Any], defaults: dict[str, Any], asked: str
) -> None:
    with ServerThread(compressing_app()) as server:
        plan = plan_for(
            server.url, {"path": "/doc", "checks": CHECKS, **endpoint}, client, **defaults
        )
        final = await (await start(plan)).wait()
        seen = server.app[SEEN]["accept-encoding"]
    total = final.total
    assert seen == [asked] * REQUESTS
    assert total.status_counts == {200: REQUESTS} and total.errors == 0
    assert total.checks_passed == 2 * REQUESTS and total.checks_failed == 0, total.check_failures
    assert total.decoded_bytes == REQUESTS * len(DOCUMENT)
    assert 0 < total.bytes < total.decoded_bytes / 10  # the pad compresses 100-fold or so


async def test_nothing_asked_nothing_compressed(client: str) -> None:
    with ServerThread(compressing_app()) as server:
        final = await (await start(plan_for(server.url, {"path": "/doc"}, client))).wait()
        seen = server.app[SEEN]["accept-encoding"]
    assert seen == [""] * REQUESTS
    assert final.total.bytes == final.total.decoded_bytes == REQUESTS * len(DOCUMENT)


async def test_raw_deflate_is_decoded_too(client: str) -> None:
    with ServerThread(compressing_app()) as server:
        plan = plan_for(server.url, {"path": "/raw-deflate", "checks": CHECKS}, client)
        final = await (await start(plan)).wait()
    assert final.total.checks_passed == 2 * REQUESTS
    assert final.total.decoded_bytes == REQUESTS * len(DOCUMENT)


async def test_a_decompression_bomb_is_a_decode_error_in_bounded_memory(client: str) -> None:
    with ServerThread(compressing_app()) as server:
        plan = plan_for(server.url, {"path": "/bomb", "checks": CHECKS}, client, requests=BOMBS)
        process = psutil.Process()
        before = process.memory_info().rss
        final = await (await start(plan)).wait()
        grown_mb = (process.memory_info().rss - before) / 2**20
    total = final.total
    assert total.error_counts == {"decode": BOMBS} and not total.status_counts, total
    message = f"decode: decoded body over {DECODED_CAP // 2**20} MiB (a decompression bomb)"
    assert total.error_messages == {message: BOMBS}
    assert total.bytes <= BOMBS * len(BOMB)
    assert grown_mb < RSS_LIMIT_MB, grown_mb


async def test_a_body_that_does_not_decode_is_a_decode_error(client: str) -> None:
    with ServerThread(compressing_app()) as server:
        final = await (await start(plan_for(server.url, {"path": "/garbage"}, client))).wait()
    assert final.total.error_counts == {"decode": REQUESTS}
    assert final.total.error_messages == {"decode: invalid gzip data": REQUESTS}
