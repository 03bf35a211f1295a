"""The two HTTP clients (fast, aiohttp) send the same requests and are counted alike.

Issue 25 §2: the bytes each client puts on the wire for the same endpoint are compared
(captured by a raw server that records them), the same header-size limits hold on both, and
in the open model every request that fell due is exactly one of requests, cancelled or
dropped, on both.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from conftest import ServerThread, counting_app
from faults import FaultServer

from stressdeck.engine import build_plan, start
from stressdeck.engine.client import USER_AGENT
from stressdeck.engine.overrides import Overrides
from stressdeck.profiles.profile import parse_profile


def plan_for(base_url: str, endpoints: list[dict[str, Any]], client: str, **load: Any) -> Any:
    document: dict[str, Any] = {
        "name": "same",
        "base_url": base_url,
        "endpoints": endpoints,
        "load": load,
    }
    return build_plan(
        parse_profile(document, "same.toml"), Overrides(client=client), max_duration=30.0
    )


async def test_every_due_request_is_counted_once(client: str) -> None:
    """Open model past what the target can take: some requests wait, some are dropped, some
    are on the wire at stop; due = requests + cancelled + dropped, exactly."""
    with ServerThread(counting_app()) as server:
        plan = plan_for(
            server.url,
            [{"name": "slow", "path": "/slow?ms=40"}],
            client,
            model="open",
            rate=300,
            duration="2s",
            connections=4,
            max_in_flight=20,
        )
        final = await (await start(plan)).wait()
    total = final.total
    assert total.dropped > 0 and total.requests > 0  # the bound was reached, work was done
    assert total.due == total.requests + total.cancelled + total.dropped, total
    assert total.due == sum(ep.due for ep in final.endpoints)
    # Every request the server answered was counted; a cancelled one may or may not have
    # been read by it before the stop.
    assert total.requests <= server.count <= total.requests + total.cancelled


class CaptureServer:
    """Records the raw bytes of every request (head and body) and answers 200."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> CaptureServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                body_out = b"" if head.startswith(b"HEAD ") else b"ok"  # HEAD: never a body
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" + body_out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()  # retrieves a reset, which asyncio would log


ENDPOINTS: list[dict[str, Any]] = [
    {"name": "get", "path": "/a?x=1&y=%C3%A9", "query": {"q": "a b"}},
    {"name": "post", "method": "POST", "path": "/p", "body": "hello"},
    {"name": "json", "method": "POST", "path": "/j", "json": {"a": 1}},
    {"name": "put empty", "method": "PUT", "path": "/u"},
    {"name": "head", "method": "HEAD", "path": "/h"},
    {
        "name": "own headers",
        "path": "/o",
        "headers": {"X-One": "1", "accept": "text/plain", "User-Agent": "mine/1"},
    },
    {"name": "own encoding", "path": "/e", "headers": {"Accept-Encoding": "identity"}},
]


async def captured(client: str) -> list[bytes]:
    """Each endpoint sent once by ``client`` (a one-user run per endpoint, in order)."""
    async with CaptureServer() as server:
        for endpoint in ENDPOINTS:
            plan = plan_for(server.url, [endpoint], client, users=1, requests=1)
            final = await (await start(plan)).wait()
            assert final.total.status_counts == {200: 1}, final.total
        return server.requests


async def test_both_clients_put_the_same_bytes_on_the_wire() -> None:
    fast, aio = await captured("fast"), await captured("aiohttp")
    assert len(fast) == len(aio) == len(ENDPOINTS)
    for ours, theirs in zip(fast, aio, strict=True):
        # The Host header names the port, which differs per capture server: compare the rest.
        assert _without_host(ours) == _without_host(theirs)
    first = _without_host(fast[0]).decode()
    assert first == (
        f"GET /a?x=1&y=%C3%A9&q=a+b HTTP/1.1\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n\r\n"
    )
    own = _without_host(fast[5]).decode()
    assert own == "GET /o HTTP/1.1\r\nUser-Agent: mine/1\r\naccept: text/plain\r\nX-One: 1\r\n\r\n"
    assert b"accept-encoding: identity" in fast[6].lower()
    assert all(b"accept-encoding" not in request.lower() for request in fast[:6] + aio[:6])


def _without_host(request: bytes) -> bytes:
    lines = request.split(b"\r\n")
    return b"\r\n".join(line for line in lines if not line.lower().startswith(b"host:"))


async def test_the_same_head_limit_on_both_clients(client: str) -> None:
    """A head past 1 MiB is a protocol error with the same words on both."""
    with FaultServer() as server:
        plan = plan_for(
            server.url, [{"name": "h", "path": "/endless-header"}], client, users=1, requests=2
        )
        final = await (await start(plan)).wait()
    assert final.total.error_messages == {"protocol: response head over 1024 KiB": 2}
