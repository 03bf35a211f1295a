"""The seam between the load loop and HTTP: which client sends each endpoint's requests.

A worker holds one ``Clients``: the fast client (httptools) for every endpoint the plan gave
it, aiohttp for the rest, both sharing one TLS context, and the HTTP/2 client for the
endpoints that ask for it. The worker only calls
``sender(index)(spec, index, recorder, due, variables)`` and ``close()``.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable, Callable

import aiohttp

from stressdeck.engine.client import (
    DEFAULT_HEADERS,
    MAX_HEAD_BYTES,
    Connector,
    Request,
    RoutedResolver,
    make_timeout,
    send,
)
from stressdeck.engine.dial import NO_ROUTES
from stressdeck.engine.fasthttp import FastClient
from stressdeck.engine.http2 import Http2Client
from stressdeck.engine.plan import Plan, RequestSpec, choose_client
from stressdeck.engine.stats import Recorder
from stressdeck.engine.tls import ssl_context
from stressdeck.profiles.routes import Routes

Send = Callable[[RequestSpec, int, Recorder, float | None, dict[str, str] | None], Awaitable[None]]


class AiohttpClient:
    """aiohttp for the endpoints the fast client does not serve (or all, with --client aiohttp)."""

    name = "aiohttp"

    def __init__(
        self,
        specs: tuple[RequestSpec, ...],
        context: ssl.SSLContext,
        server_name: str | None,
        limit: int | None = None,
        routes: Routes = NO_ROUTES,
    ) -> None:
        # Closed model: the users bound the connections. Open model: the lanes do, and
        # the limit equals them so nothing ever waits for a connection inside aiohttp,
        # where the wait would be invisible and end as a timeout blamed on the target.
        # Through a proxy, a connection is one to the proxy (a tunnel, for https).
        connector: aiohttp.BaseConnector
        if routes.unix_socket:
            connector = aiohttp.UnixConnector(path=routes.unix_socket, limit=limit or 0)
        else:
            connector = Connector(
                limit=limit or 0,
                ssl=context,
                enable_cleanup_closed=True,
                resolver=RoutedResolver(routes) if routes.connect_to else None,
                local_addr=(routes.local_address, 0) if routes.local_address else None,
            )
        self._routes = routes
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            request_class=Request,
            # The same requests as the fast client's: its default headers and no others
            # (aiohttp would add Accept-Encoding, and Content-Type to a body).
            headers=dict(DEFAULT_HEADERS),
            skip_auto_headers=("Accept-Encoding", "Content-Type"),
            # The same limits on answers: a head of up to MAX_HEAD_BYTES in all (enforced by
            # the connection, client._ResponseHandler), however many lines it takes.
            max_line_size=MAX_HEAD_BYTES,
            max_field_size=MAX_HEAD_BYTES,
            max_headers=MAX_HEAD_BYTES // 4,
        )
        # aiohttp resends an idempotent request once, unseen, when its connection fails
        # (ClientOSError / ServerDisconnectedError): the target would get twice the load we
        # count. A load tester reports what it sent, so every attempt is one request.
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False
        self._timeouts = [make_timeout(spec) for spec in specs]
        self._server_name = server_name

    async def send(
        self,
        spec: RequestSpec,
        index: int,
        recorder: Recorder,
        due: float | None = None,
        variables: dict[str, str] | None = None,
    ) -> None:
        await send(
            self._session,
            spec,
            index,
            self._timeouts[index],
            recorder,
            due,
            variables,
            server_name=self._server_name,
            routes=self._routes,
        )

    async def close(self) -> None:
        await self._session.close()


class Clients:
    """The clients of one worker, opened on its event loop."""

    def __init__(self, plan: Plan, *, connections: int | None = None) -> None:
        """``connections`` bounds the fast client's pool (None: one per request in flight,
        which users or max_in_flight already bound)."""
        names = plan.clients or tuple(choose_client("auto", spec) for spec in plan.requests)
        # Made once, when first needed: the system's CAs take ~0.1 s to load, and plain
        # http never needs them.
        context = functools.cache(lambda: ssl_context(plan.tls, plan.insecure))
        server_name = plan.tls.server_name if plan.tls else None
        routes = plan.routes
        self.fast = (
            FastClient(
                plan.requests, context, server_name=server_name, limit=connections, routes=routes
            )
            if "fast" in names
            else None
        )
        self.aiohttp = (
            AiohttpClient(plan.requests, context(), server_name, connections, routes)
            if "aiohttp" in names
            else None
        )
        self.http2 = (
            Http2Client(
                plan.requests,
                # Its own context: ALPN "h2" on the shared one would make servers answer the
                # HTTP/1.1 clients in HTTP/2.
                functools.cache(lambda: _alpn_h2(ssl_context(plan.tls, plan.insecure))),
                server_name=server_name,
                limit=connections,
                routes=routes,
            )
            if "http2" in names
            else None
        )
        by_name = {"fast": self.fast, "aiohttp": self.aiohttp, "http2": self.http2}
        self._senders: list[Send] = []
        for name in names:
            client = by_name[name]
            assert client is not None
            self._senders.append(client.send)

    def sender(self, index: int) -> Send:
        return self._senders[index]

    async def close(self) -> None:
        for client in (self.fast, self.aiohttp, self.http2):
            if client is not None:
                await client.close()


def _alpn_h2(context: ssl.SSLContext) -> ssl.SSLContext:
    # http/1.1 offered too, as curl does: a server without h2 then completes the handshake
    # and the client can say what it chose, instead of a bare "no application protocol".
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context
