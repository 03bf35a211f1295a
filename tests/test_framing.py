"""HTTP/1.1 framing with both clients: HEAD, 1xx, 204 and bodies ended by the close.

The fast client parses with llhttp, which has no HEAD mode and no end-of-stream call from
httptools: these are the cases it must handle itself. Counts are checked against the server.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from faults import FRAMED_BYTES, FaultServer

from stressdeck.core.errors import InputError
from stressdeck.engine import build_plan, start
from stressdeck.engine.fasthttp import FastClient
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.stats import Recorder
from stressdeck.profiles.profile import parse_profile
from stressdeck.sessions.summary import summary_text

REQUESTS = 40


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as fault_server:
        yield fault_server


async def run(server: FaultServer, client: str, endpoint: dict[str, Any]) -> Any:
    document = {
        "name": "framing",
        "base_url": server.url,
        "defaults": {"timeout": "2s"},
        "load": {"users": 4, "requests": REQUESTS},
        "endpoints": [{"name": "e", **endpoint}],
    }
    plan = build_plan(parse_profile(document, "framing.toml"), Overrides(client=client))
    return await (await start(plan)).wait()


@pytest.mark.parametrize(
    ("endpoint", "status", "body_bytes"),
    [
        ({"method": "HEAD", "path": "/head-length"}, 200, 0),
        ({"path": "/continue"}, 200, 2),
        ({"path": "/close-delimited"}, 200, FRAMED_BYTES),
        ({"path": "/no-content"}, 204, 0),
    ],
    ids=["head-with-length", "100-continue", "close-delimited", "204"],
)
async def test_framing_is_read_right_and_counted_once(
    server: FaultServer, client: str, endpoint: dict[str, Any], status: int, body_bytes: int
) -> None:
    final = await run(server, client, endpoint)
    total = final.total
    assert total.status_counts == {status: REQUESTS} and total.error_counts == {}
    assert total.bytes == REQUESTS * body_bytes
    # A HEAD answer that announced a body must not be waited for until the timeout.
    assert total.latency_ms.max < 1000
    assert server.seen(endpoint["path"]) == REQUESTS
    assert final.endpoints[0].client == client


async def test_a_keep_alive_server_is_reused_and_a_closing_one_is_not(
    server: FaultServer, client: str
) -> None:
    before = server.connections
    await run(server, client, {"path": "/ok"})
    assert server.connections - before <= 4  # one per user, kept alive
    before = server.connections
    await run(server, client, {"path": "/close-delimited"})
    assert server.connections - before == REQUESTS


async def test_the_fast_client_never_opens_more_connections_than_its_bound(
    server: FaultServer,
) -> None:
    document = {
        "name": "bound",
        "base_url": server.url,
        "endpoints": [{"name": "d", "path": "/drip"}],
    }
    plan = build_plan(parse_profile(document, "bound.toml"))
    fast = FastClient(plan.requests, ssl.create_default_context, limit=2)
    recorder = Recorder(1)
    before = server.connections
    spec = plan.requests[0]
    await asyncio.gather(*(fast.send(spec, 0, recorder, None, None) for _ in range(6)))
    await fast.close()
    delta = recorder.cut(0.0, 1.0).endpoints[0]
    assert delta.status_counts == {200: 6} and delta.requests == 6
    assert server.connections - before == 2  # six requests waited their turn on two


def test_auto_gives_the_fast_client_every_endpoint_it_serves() -> None:
    document = {
        "name": "choice",
        "base_url": "http://127.0.0.1:1",
        "endpoints": [
            {"name": "plain", "path": "/a"},
            {"name": "templated path", "path": "/items/{random.int}"},
            {"name": "credentials", "url": "http://user:pw@127.0.0.1:1/b"},
        ],
    }
    # (A host from a {variable} would go to aiohttp too, but profiles refuse those now.)
    profile = parse_profile(document, "choice.toml")
    assert build_plan(profile).clients == ("fast", "fast", "aiohttp")
    assert set(build_plan(profile, Overrides(client="aiohttp")).clients) == {"aiohttp"}
    assert set(build_plan(profile, Overrides(client="fast")).clients) == {"fast"}
    written = parse_profile({**document, "client": "aiohttp"}, "choice.toml")
    assert set(build_plan(written).clients) == {"aiohttp"}


async def test_the_summary_says_which_client_sent_what(server: FaultServer) -> None:
    document = {
        "name": "both",
        "base_url": server.url,
        "load": {"users": 2, "requests": 20},
        "endpoints": [
            {"name": "quick", "path": "/ok"},
            {"name": "with credentials", "url": server.url.replace("://", "://u:p@") + "/ok"},
        ],
    }
    final = await (await start(build_plan(parse_profile(document, "both.toml")))).wait()
    assert [ep.client for ep in final.endpoints] == ["fast", "aiohttp"]
    assert final.total.client == "aiohttp+fast"
    assert "client: aiohttp (with credentials); fast (quick)" in summary_text(final)
    assert final.total.status_counts == {200: 20} and server.seen("/ok") == 20


async def test_an_endless_header_is_a_protocol_error_in_bounded_memory(
    server: FaultServer, client: str
) -> None:
    final = await run(server, client, {"path": "/endless-header"})
    assert final.total.error_counts == {"protocol": REQUESTS}
    assert server.seen("/endless-header") == REQUESTS


def test_redirects_followed_go_to_aiohttp_and_fast_refuses_them() -> None:
    document = {
        "name": "redirects",
        "base_url": "http://127.0.0.1:1",
        "endpoints": [
            {"name": "plain", "path": "/a"},
            {"name": "follows", "path": "/b", "follow_redirects": True},
        ],
    }
    profile = parse_profile(document, "redirects.toml")
    assert build_plan(profile).clients == ("fast", "aiohttp")
    with pytest.raises(InputError, match=r"endpoints\[1\] \(follows\) asks to"):
        build_plan(profile, Overrides(client="fast"))
