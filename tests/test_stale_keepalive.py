"""A healthy server closing an idle keep-alive connection is not an error (issue 25 §1).

``IdleClosingServer`` closes a keep-alive connection idle for IDLE_S, and always at the
worst moment: it closes when the next request arrives, without answering or processing it,
as when its idle timer fires while that request is on the way (uvicorn's 5 s keep-alive, or
nginx's keepalive_timeout, met by a user thinking about as long). Both clients resend such a
request once on a fresh connection when it is idempotent (or carries an Idempotency-Key):
no error, and the server processed exactly the requests counted. A POST is not resent (the
server may have acted on it, for all the client can tell): a disconnect, as before.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from typing import Any

import pytest

from stressdeck.engine import build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.profiles.profile import parse_profile
from stressdeck.sessions.summary import summary_text

IDLE_S = 0.3
THINK = "450ms"  # every reused connection has idled past IDLE_S
USERS = 2
REQUESTS = 8  # 4 per user: the first on a new connection, the others mostly on stale ones


class IdleClosingServer:
    """HTTP/1.1 on 127.0.0.1 that closes connections idle for ``idle_s`` (FIN, or RST with
    ``reset``) when the next request arrives; ``announce`` sends Keep-Alive: timeout=N."""

    def __init__(self, idle_s: float, reset: bool = False, announce: bool = False) -> None:
        self.idle_s, self.reset, self.announce = idle_s, reset, announce
        self.url = ""
        self.processed = 0  # requests answered
        self.closed_idle = 0  # requests that met a connection closed at its idle timeout
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def __enter__(self) -> IdleClosingServer:
        self._thread.start()
        assert self._ready.wait(5), "server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered_at: float | None = None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if answered_at is not None and time.monotonic() - answered_at >= self.idle_s:
                    self.closed_idle += 1
                    if self.reset:
                        sock = writer.get_extra_info("socket")
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                        writer.transport.abort()
                    else:
                        writer.close()
                    return
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length" and int(value):
                        await reader.readexactly(int(value))
                self.processed += 1
                extra = f"Keep-Alive: timeout={self.idle_s:g}\r\n" if self.announce else ""
                writer.write(f"HTTP/1.1 200 OK\r\n{extra}Content-Length: 2\r\n\r\nok".encode())
                await writer.drain()
                answered_at = time.monotonic()
        except (asyncio.IncompleteReadError, ConnectionError):
            return


def plan_for(
    url: str,
    client: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    users: int = USERS,
) -> Any:
    endpoint: dict[str, Any] = {"name": "ep", "path": "/", "method": method, "think": THINK}
    if headers:
        endpoint["headers"] = headers
    if method == "POST":
        endpoint["body"] = "x=1"
    document = {
        "name": "stale",
        "base_url": url,
        "load": {"model": "closed", "users": users, "requests": REQUESTS},
        "endpoints": [endpoint],
    }
    return build_plan(
        parse_profile(document, "stale.toml"), Overrides(client=client), max_duration=30.0
    )


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
@pytest.mark.parametrize(
    ("method", "headers"),
    [("GET", None), ("DELETE", None), ("POST", {"Idempotency-Key": "k1"})],
    ids=["get", "delete", "post-with-idempotency-key"],
)
async def test_a_stale_connection_is_resent_not_an_error(
    client: str, reset: bool, method: str, headers: dict[str, str] | None
) -> None:
    with IdleClosingServer(IDLE_S, reset=reset) as server:
        final = await (await start(plan_for(server.url, client, method, headers))).wait()
        total = final.total
        assert total.status_counts == {200: REQUESTS} and not total.error_counts, total
        assert total.errors == 0 and total.cancelled == 0
        assert server.processed == total.requests == REQUESTS
        # Every stale connection met was one resend (up to 3 per user: how many depends on
        # which idle connection each user takes from the shared pool).
        assert total.stale_resends == server.closed_idle > 0
        # The summary says so, apart from the errors (there are none).
        assert f"keep-alive: {total.stale_resends} resent" in summary_text(final)


async def test_a_post_on_a_stale_connection_is_a_disconnect(client: str) -> None:
    with IdleClosingServer(IDLE_S) as server:
        final = await (await start(plan_for(server.url, client, "POST"))).wait()
        total = final.total
        assert total.stale_resends == 0
        assert total.error_counts == {"disconnect": server.closed_idle}, total
        assert server.closed_idle > 0
        # The server processed the POSTs that were answered; the others it never read.
        assert server.processed == total.status_counts[200] == REQUESTS - server.closed_idle


async def test_an_announced_keep_alive_timeout_is_honoured(client: str) -> None:
    with IdleClosingServer(IDLE_S, announce=True) as server:
        # One user: its connection idles THINK between requests, past the announced timeout.
        final = await (await start(plan_for(server.url, client, users=1))).wait()
        total = final.total
        assert total.status_counts == {200: REQUESTS} and total.stale_resends == 0, total
        # Never reused past the announced timeout: one connection per request.
        assert server.closed_idle == 0 and server.connections == REQUESTS


class Uvicorn:
    """uvicorn serving a counting ASGI app on 127.0.0.1, on its own thread, with its real
    keep-alive timer (``timeout_keep_alive``, 5 s by default; shorter here)."""

    def __init__(self, keep_alive_s: int) -> None:
        import uvicorn

        self.count = 0
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=0,
            timeout_keep_alive=keep_alive_s,
            log_level="error",
            lifespan="off",
            interface="asgi3",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.url = ""

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        self.count += 1
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})

    def __enter__(self) -> Uvicorn:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)


async def test_uvicorns_keep_alive_timeout_costs_no_errors(client: str) -> None:
    """Users thinking exactly as long as uvicorn keeps a connection: before the resends,
    5-7 % of such requests were reported as disconnects (issue 25 §1)."""
    with Uvicorn(keep_alive_s=1) as server:
        document = {
            "name": "uvicorn",
            "base_url": server.url,
            "load": {"model": "closed", "users": 6, "duration": "4s"},
            "endpoints": [{"name": "ep", "path": "/", "think": "1s"}],
        }
        plan = build_plan(parse_profile(document, "uvicorn.toml"), Overrides(client=client))
        final = await (await start(plan)).wait()
        await asyncio.sleep(0)  # nothing more is sent; uvicorn's count is settled below
        total = final.total
        assert total.errors == 0 and not total.error_counts, total
        assert total.requests > 0
        deadline = time.monotonic() + 5
        while server.count != total.requests + total.cancelled and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        # Every answered request reached uvicorn; of those cancelled in flight at the stop, one
        # written as uvicorn closed that idle connection (the race this server is built for)
        # may never be read by it: CI once counted 29 = 24 answered + 5 of 6 cancelled.
        assert total.requests <= server.count <= total.requests + total.cancelled, (
            server.count,
            total,
        )
