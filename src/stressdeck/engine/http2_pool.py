"""HTTP/2 connections and their pool: streams multiplexed on a few connections, framed by
``h2``; how the client uses them is ``http2.py``.

A connection carries up to the server's ``SETTINGS_MAX_CONCURRENT_STREAMS`` streams (never
more than ``MAX_STREAMS``); the pool opens another only when every open one is full, and
never more than its bound.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from stressdeck.engine.client import BODY_CAP, DISCONNECT, PROTOCOL, EventCounter, error_message
from stressdeck.engine.dial import NO_ROUTES, open_connection
from stressdeck.engine.tls import tls_class
from stressdeck.profiles.routes import Routes

# Streams per connection we open at most, whatever the server allows (nginx offers 128,
# many servers 100 or "unlimited"): past this, another connection spreads the work.
MAX_STREAMS = 100
# Our receive window per stream and per connection: large enough that a fast server is never
# held back by WINDOW_UPDATE round trips; the data is counted and dropped as it arrives.
WINDOW = 16 * 1024 * 1024
# A response's header block past this is a protocol error, as for HTTP/1.1.
MAX_HEADER_LIST = 1024 * 1024
_EVENT_STREAM = b"text/event-stream"

# The pool key: where a connection goes and how it is verified.
Origin = tuple[str, str, int, str | None]


class Stream:
    """One request's response as it arrives."""

    __slots__ = (
        "waiter",
        "status",
        "headers",
        "nbytes",
        "chunks",
        "events",
        "first_byte",
        "sse",
        "keep",
        "message",
    )

    def __init__(self, waiter: asyncio.Future[str], keep_body: bool) -> None:
        self.waiter = waiter
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.nbytes = self.chunks = self.events = 0
        self.first_byte = 0.0
        self.sse: EventCounter | None = None
        self.keep: bytearray | None = bytearray() if keep_body else None
        self.message = ""

    def finish(self, outcome: str, message: str = "") -> None:
        if outcome:
            self.message = message
        if not self.waiter.done():
            self.waiter.set_result(outcome)


class Connection(asyncio.Protocol):
    """One HTTP/2 connection carrying up to ``capacity`` streams at once."""

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        # Our own header blocks are checked when built (request_headers); h2's outbound
        # checks would cost ~30 µs a request more. What the server sends is still checked.
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.h2 = h2.connection.H2Connection(config=config)
        self.streams: dict[int, Stream] = {}
        self.closed = False
        self.going_away = False  # GOAWAY received: no new stream goes here
        self._window_open = asyncio.Event()  # set when the peer grants more send window
        self._flush_pending = False
        self.ready: asyncio.Future[None] = pool.loop.create_future()  # the server's SETTINGS

    @property
    def capacity(self) -> int:
        allowed = self.h2.remote_settings.max_concurrent_streams
        return min(MAX_STREAMS, allowed) - len(self.streams)

    @property
    def usable(self) -> bool:
        return not (self.closed or self.going_away) and self.transport is not None

    # -- a request --------------------------------------------------------------------------

    def start(
        self, headers: list[tuple[bytes, bytes]], body: bytes | None, keep_body: bool
    ) -> tuple[int, Stream]:
        stream_id = self.h2.get_next_available_stream_id()
        stream = Stream(self.pool.loop.create_future(), keep_body)
        self.streams[stream_id] = stream
        self.h2.send_headers(stream_id, headers, end_stream=not body)
        self._flush_soon()
        return stream_id, stream

    async def send_body(self, stream_id: int, body: bytes) -> None:
        """The request body, as fast as the peer's flow-control windows let it go."""
        view = memoryview(body)
        while view:
            window = self.h2.local_flow_control_window(stream_id)
            if window <= 0:
                self._window_open.clear()
                await self._window_open.wait()
                if self.closed or stream_id not in self.streams:
                    return
                continue
            size = min(window, self.h2.max_outbound_frame_size, len(view))
            self.h2.send_data(stream_id, bytes(view[:size]), end_stream=size == len(view))
            view = view[size:]
            self._flush()

    def cancel(self, stream_id: int) -> None:
        """Give up on a stream (a timeout, a stop): reset it so the server stops working on it."""
        stream = self.streams.pop(stream_id, None)
        if stream is None or self.closed:
            return
        try:
            self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        except h2.exceptions.H2Error:
            pass  # already closed on the peer's side
        self._flush()
        self.pool.wake()

    def finished(self, stream_id: int) -> None:
        self.streams.pop(stream_id, None)
        if self.going_away and not self.streams:
            self.abort()  # nothing more may go on it; free its place in the bound
        self.pool.wake()

    def _flush_soon(self) -> None:
        # Every stream started in this turn of the loop goes out in one write: a socket
        # write per request costs more than the framing when many users share a connection.
        if not self._flush_pending:
            self._flush_pending = True
            self.pool.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(WINDOW)  # the connection's own window
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.H2Error as exc:
            self._fail_all(PROTOCOL, f"HTTP/2: {error_message(exc)}")
            self.abort()
            return
        for event in events:
            self._on_event(event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        self._window_open.set()
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionResetError("closed before SETTINGS"))
            self.ready.exception()  # retrieved here: acquire() may be gone already
        if isinstance(exc, ssl.SSLError):
            self._fail_all(tls_class(exc), error_message(exc))
        else:
            why = error_message(exc) if exc else "connection closed before the answer was complete"
            self._fail_all(DISCONNECT, why)

    def _fail_all(self, outcome: str, message: str) -> None:
        for stream in self.streams.values():
            stream.finish(outcome, message)

    # -- h2 events --------------------------------------------------------------------------

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if event.flow_controlled_length:
                # Counted and dropped as it arrives: give the window straight back.
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if stream is not None and event.data:
                self._on_data(stream, event.data)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                self._on_headers(stream, event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                if stream.sse is not None:
                    stream.events += stream.sse.finish()
                stream.finish("")
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                code = _code_name(event.error_code)
                stream.finish(DISCONNECT, f"stream reset by the server (RST_STREAM {code})")
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.going_away = True
            code = _code_name(event.error_code)
            last = event.last_stream_id if event.last_stream_id is not None else 0
            for stream_id, stream in self.streams.items():
                if stream_id > last:
                    stream.finish(DISCONNECT, f"GOAWAY {code}: the server did not take the stream")
            self.pool.wake()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            if not self.ready.done():
                self.ready.set_result(None)
            self.pool.wake()  # the stream limit may have grown
        elif isinstance(event, h2.events.WindowUpdated):
            self._window_open.set()

    def _on_headers(self, stream: Stream, headers: list[tuple[bytes, bytes]]) -> None:
        status = 0
        for name, value in headers:
            if name == b":status":
                try:
                    status = int(value)
                except ValueError:
                    status = 0
            elif not name.startswith(b":"):
                stream.headers.append((name.decode("latin-1"), value.decode("latin-1")))
                if name == b"content-type" and value.lower().startswith(_EVENT_STREAM):
                    stream.sse = EventCounter()
        if not 200 <= status <= 999:
            stream.finish(PROTOCOL, f"HTTP/2: not a final status ({status})")
            return
        stream.status = status

    def _on_data(self, stream: Stream, data: bytes) -> None:
        if not stream.first_byte:
            stream.first_byte = time.perf_counter()
        stream.nbytes += len(data)
        stream.chunks += 1  # a DATA frame: HTTP/2's unit of a body arriving in parts
        if stream.sse is not None:
            stream.events += stream.sse.feed(data)
        keep = stream.keep
        if keep is not None and len(keep) < BODY_CAP:
            keep += data[: BODY_CAP - len(keep)]


def _code_name(code: object) -> str:
    return getattr(code, "name", str(code))


class Pool:
    """The HTTP/2 connections of one worker, at most ``limit`` open at once (None: as many as
    the streams need, each carrying up to its stream limit)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        context: Callable[[], ssl.SSLContext],
        limit: int | None,
        routes: Routes = NO_ROUTES,
    ) -> None:
        self.loop = loop
        self.context = context
        self.limit = limit
        self.routes = routes
        self.connections: dict[Origin, list[Connection]] = {}
        self.open: set[Connection] = set()
        self._opening: dict[Origin, asyncio.Future[Connection]] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()

    def _free(self, origin: Origin) -> Connection | None:
        best = None
        for connection in self.connections.get(origin, ()):
            if connection.usable and connection.capacity > 0:
                if best is None or connection.capacity > best.capacity:
                    best = connection
        return best

    async def acquire(self, origin: Origin) -> Connection:
        """A connection to ``origin`` with a free stream: an open one, else a new one once
        the bound allows it, else the first to free a stream."""
        while True:
            connection = self._free(origin)
            if connection is not None:
                return connection
            opening = self._opening.get(origin)
            if opening is not None:
                # One connection is being made already: its streams are shared, so wait for
                # it rather than racing a second handshake (a burst of 64 requests must not
                # open 64 connections only to use one).
                try:
                    await asyncio.shield(opening)
                except Exception:
                    pass  # its failure is its own request's to count: try again, as ourselves
                continue
            if self.limit is None or len(self.open) < self.limit:
                return await self._open(origin)
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()

    async def _open(self, origin: Origin) -> Connection:
        future: asyncio.Future[Connection] = self.loop.create_future()
        self._opening[origin] = future
        try:
            connection = await self._connect(origin)
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc if isinstance(exc, Exception) else ConnectionError())
                future.exception()  # retrieved: waiters retry on their own
            raise
        finally:
            self._opening.pop(origin, None)
        future.set_result(connection)
        return connection

    async def _connect(self, origin: Origin) -> Connection:
        scheme, host, port, server_name = origin
        https = scheme == "https"
        _, connection = await open_connection(
            self.loop,
            lambda: Connection(self, origin),
            self.routes,
            host,
            port,
            ssl=self.context() if https else None,
            server_hostname=(server_name or host) if https else None,
        )
        transport = connection.transport
        if https and transport is not None:
            ssl_object = transport.get_extra_info("ssl_object")
            agreed = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
            if agreed != "h2":
                connection.abort()
                raise NotHttp2(f"the server did not agree to HTTP/2 (ALPN: {agreed or 'none'})")
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.open.add(connection)
        self.connections.setdefault(origin, []).append(connection)
        # The server's SETTINGS say how many streams it takes: wait for them (one round trip,
        # once per connection) rather than overrun a server that allows fewer than we'd open.
        await connection.ready
        return connection

    def forget(self, connection: Connection) -> None:
        self.open.discard(connection)
        siblings = self.connections.get(connection.origin)
        if siblings and connection in siblings:
            siblings.remove(connection)
        self.wake()

    def wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for connection in list(self.open):
            connection.abort()
        self.connections.clear()


class _NotHttp2(Exception):
    """TLS worked but ALPN did not choose h2."""


class NotHttp2(Exception):
    """TLS worked but ALPN did not choose h2."""
