"""A send cancelled by its caller (not by a worker's stop, which settles first) records what
the request was: cancelled once on the wire, dropped before. Each client's own branch."""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faults import FaultServer
from test_http2 import H2Server
from waiting import eventually

from stressdeck.engine import build_plan
from stressdeck.engine.clients import AiohttpClient
from stressdeck.engine.fasthttp import FastClient
from stressdeck.engine.http2 import Http2Client
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.stats import Recorder
from stressdeck.profiles.profile import parse_profile


def specs_for(url: str, tmp_path: Path, **endpoint: Any) -> Any:
    document = {
        "name": "cancel",
        "base_url": url,
        "endpoints": [{"name": "hang", "path": "/hang", **endpoint}],
    }
    return build_plan(parse_profile(document, str(tmp_path / "c.toml")), Overrides()).requests


def client_for(name: str, specs: Any, limit: int) -> Any:
    context = functools.cache(ssl.create_default_context)
    if name == "fast":
        return FastClient(specs, context, limit=limit)
    if name == "aiohttp":
        return AiohttpClient(specs, context(), None, limit)
    return Http2Client(specs, context, limit=limit)


def waiting_for_a_connection(client: Any) -> int:
    """Sends waiting for a connection of the client's full pool (each client's own count)."""
    if isinstance(client, FastClient):
        return len(client.pool._waiters)
    connector = client._session.connector
    return sum(len(waiters) for waiters in connector._waiters.values())


@pytest.fixture
def h2_server(request: pytest.FixtureRequest) -> Iterator[H2Server]:
    with H2Server(request.param) as server:
        yield server


def counts(recorder: Recorder) -> tuple[int, int, int]:
    (delta,) = recorder.cut(0.0, 1.0).endpoints
    return delta.requests, delta.cancelled, delta.dropped


@pytest.mark.parametrize("name", ["fast", "aiohttp"])
async def test_http1_a_cancelled_send_is_cancelled_on_the_wire_and_dropped_before(
    name: str, tmp_path: Path
) -> None:
    with FaultServer() as server:
        (spec,) = specs = specs_for(server.url, tmp_path)
        client = client_for(name, specs, limit=1)
        recorder = Recorder(1)
        try:
            on_wire = asyncio.create_task(client.send(spec, 0, recorder))
            await eventually(lambda: server.seen("/hang") == 1, what="the request at the server")
            # The only connection is taken: this one waits for it, never written.
            waiting = asyncio.create_task(client.send(spec, 0, recorder))
            await eventually(lambda: waiting_for_a_connection(client) == 1, what="a waiter")
            for task in (on_wire, waiting):
                task.cancel()
            results = await asyncio.gather(on_wire, waiting, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in results), results
        finally:
            await client.close()
        assert counts(recorder) == (0, 1, 1)
        assert server.seen("/hang") == 1


@pytest.mark.parametrize("h2_server", ["hang"], indirect=True)
async def test_http2_a_cancelled_stream_is_cancelled(h2_server: H2Server, tmp_path: Path) -> None:
    (spec,) = specs = specs_for(h2_server.url, tmp_path, http2=True)
    client = client_for("http2", specs, limit=1)
    recorder = Recorder(1)
    try:
        task = asyncio.create_task(client.send(spec, 0, recorder))
        await eventually(lambda: h2_server.received == 1, what="the stream at the server")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await client.close()
    assert counts(recorder) == (0, 1, 0)
