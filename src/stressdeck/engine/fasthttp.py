"""The fast client: HTTP/1.1 over asyncio Protocol connections, parsed by httptools (llhttp).

One ``FastClient`` per worker keeps a pool of keep-alive connections, never more than its
bound. A request goes out as one prebuilt ``bytes`` write; the response is parsed in the
protocol's callbacks, which count the streaming figures (time to first byte, chunks, SSE
events, bytes) as the body arrives and never buffer it unless an extract needs it.

The contract is the aiohttp client's (docs/clients.md): latency from the due time, every
request counted once with one status code or one error class, no redirect followed, no
silent resend (a request met by a stale keep-alive connection is resent once, and counted).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import httptools
from multidict import CIMultiDict
from yarl import URL

from stressdeck.engine.client import (
    BODY_CAP,
    CONNECT,
    DECODE,
    DEFAULT_HEADERS,
    DISCONNECT,
    DNS,
    KEEP_ALIVE_MARGIN_S,
    MAX_HEAD_BYTES,
    OTHER,
    PROTOCOL,
    TIMEOUT,
    EventCounter,
    error_message,
    keep_alive_timeout,
    resendable,
    sending_slot,
)
from stressdeck.engine.decoding import DecodeError, Decoder
from stressdeck.engine.dial import NO_ROUTES, open_connection
from stressdeck.engine.exchange import judge, render
from stressdeck.engine.plan import RequestSpec
from stressdeck.engine.stats import Recorder
from stressdeck.engine.tls import tls_class
from stressdeck.engine.users import cookie_jar
from stressdeck.profiles.routes import Routes

# Methods whose requests carry a Content-Length even without a body, as aiohttp sends them.
_LENGTH_ALWAYS = frozenset({"POST", "PUT", "PATCH"})
_EVENT_STREAM = b"text/event-stream"
_PLACED = frozenset({"content-length", *(name.lower() for name, _ in DEFAULT_HEADERS)})


class _NotAnAnswer(Exception):
    """Raised inside a parser callback: what arrived is not an answer to the request out.

    httptools stops parsing at once and raises HttpParserCallbackError with this as its
    context; ``data_received`` then counts the request as a protocol error."""


# The pool key: where a connection goes and how it is verified.
Origin = tuple[str, str, int, str | None]


@dataclass(frozen=True)
class Prepared:
    """A request as bytes on the wire, and the connection it needs."""

    origin: Origin
    data: bytes
    upgrade: bool = False  # the request asks for an Upgrade: a 101 is an answer to it


def prepare(
    method: str,
    url: str,
    headers: tuple[tuple[str, str], ...],
    body: bytes | None,
    server_name: str | None,
) -> Prepared:
    """The request line, headers and body of one request; raises ValueError for a URL or a
    header the wire cannot carry (a CR or LF inside a value would inject a header)."""
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise ValueError(f"not an http(s) URL: {url}")
    host = parsed.raw_host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    host_header = f"[{host}]" if ":" in host else host
    if not parsed.is_default_port():
        host_header += f":{port}"
    given = {name.lower() for name, _ in headers}
    lines = [f"{method} {parsed.raw_path_qs or '/'} HTTP/1.1"]
    if "host" not in given:
        lines.append(f"Host: {host_header}")
    if parsed.raw_user is not None and "authorization" not in given:
        # As aiohttp does: credentials in the URL become Basic auth, never a request line.
        pair = f"{parsed.user or ''}:{parsed.password or ''}".encode()
        lines.append("Authorization: Basic " + base64.b64encode(pair).decode("ascii"))
    # The defaults first, a profile's own value in their place (as aiohttp merges them):
    # both clients put the same bytes on the wire.
    own = {name.lower(): (name, value) for name, value in headers}
    for name, value in DEFAULT_HEADERS:
        name, value = own.get(name.lower(), (name, value))
        lines.append(f"{name}: {value}")
    for name, value in headers:
        if name.lower() in _PLACED:
            continue  # the body decides its length; the defaults are placed already
        lines.append(f"{name}: {value}")
    if body is not None or method in _LENGTH_ALWAYS:
        lines.append(f"Content-Length: {len(body or b'')}")
    text = "\r\n".join(lines)
    if any(bad in line for line in lines for bad in ("\r", "\n", "\x00")):
        raise ValueError("a CR, LF or NUL inside the request line or a header")
    data = (text + "\r\n\r\n").encode("utf-8") + (body or b"")
    return Prepared((parsed.scheme, host, port, server_name), data, "upgrade" in given)


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.waiter: asyncio.Future[str] | None = None
        self.deadline = 0.0  # perf_counter time the request in flight times out at
        self.reusable = False
        self.message = ""  # what went wrong, for the error_messages the summary shows
        self._parser_spent = False  # after a HEAD response: see start()
        # Where bytes arriving on this connection while idle are counted (the endpoint of
        # the last answer it carried): see data_received.
        self.last: tuple[Recorder, int] | None = None
        self.idle_since = 0.0  # perf_counter time it went back to the pool
        self.idle_limit = 0.0  # the server's Keep-Alive timeout, seconds; 0: none announced
        self._reset(False, False, False, False)

    def _reset(self, head: bool, keep_body: bool, keep_headers: bool, upgrade: bool) -> None:
        self.head = head
        self.upgrade = upgrade
        self.answered = False  # the final answer is complete: anything after it is not one
        self.coding = b""  # the answer's Content-Encoding
        self.idle_limit = 0.0  # until this answer announces its Keep-Alive timeout
        self.decoder: Decoder | None = None  # set for a gzip or deflate body
        self.status = 0
        self.nbytes = 0
        self.chunks = 0
        self._chunk_mark = 0
        self.events = 0
        self.first_byte = 0.0
        self.sse: EventCounter | None = None
        self.framed = False  # Content-Length or chunked: the body's end is not the close
        self.headers_done = False
        self.head_bytes = 0
        self.keep: bytearray | None = bytearray() if keep_body else None
        self.headers: list[tuple[str, str]] | None = [] if keep_headers else None
        # For the user's cookie jar; made only when an answer sets one (not a list per request).
        self.set_cookies: list[str] | None = None

    # -- the request ------------------------------------------------------------------------

    def start(
        self,
        data: bytes,
        deadline: float,
        head: bool,
        keep_body: bool,
        keep_headers: bool,
        upgrade: bool = False,
    ) -> asyncio.Future[str]:
        """Send one request; the future's result is "" when the response is complete, else
        the error class. A HEAD response's parser is replaced afterwards: llhttp, with no HEAD
        mode, would wait for the body its Content-Length announces."""
        if self._parser_spent:
            self.parser = httptools.HttpResponseParser(self)
            self._parser_spent = False
        self._reset(head, keep_body, keep_headers, upgrade)
        self.reusable = False
        self.deadline = deadline
        waiter = self.pool.loop.create_future()
        self.waiter = waiter
        assert self.transport is not None
        self.transport.write(data)
        return waiter

    def _finish(self, outcome: str, message: str = "") -> None:
        if outcome:
            self.message = message
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(outcome)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:
            # Bytes after a complete answer, before the next request was written (a second
            # answer, the body of a HEAD answer): nobody asked for them, and the next request
            # must not take them for its answer. Counted apart; the connection is closed.
            if not self.closed and self.last is not None:
                recorder, index = self.last
                recorder.record_unasked(index)
            self.last = None
            self.abort()
            return
        if not self.headers_done:
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD_BYTES:
                self._finish(PROTOCOL, f"response head over {MAX_HEAD_BYTES // 1024} KiB")
                self.abort()
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.reusable = False
            self._finish("")  # 101: the status is recorded; the connection is not HTTP now
            self.abort()
            return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, DecodeError):
                self._finish(DECODE, str(cause))
            else:
                why = str(cause) if isinstance(cause, _NotAnAnswer) else error_message(exc)
                self._finish(PROTOCOL, why)
            self.abort()
            return
        except httptools.HttpParserError as exc:
            self._finish(PROTOCOL, error_message(exc))
            self.abort()
            return
        if self.answered:
            # Only now, with every byte of this read parsed: bytes after the answer in the
            # same read made it a protocol error above, never a second status.
            self._finish("")

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost decides what the request was

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.waiter is None:
            return
        if exc is None and self.headers_done and not self.framed and not self.head:
            try:
                self._finish_decoding()
            except DecodeError as failure:
                self._finish(DECODE, str(failure))
                return
            self._finish("")  # a body delimited by the close, read to its end
        elif isinstance(exc, ssl.SSLError):
            self._finish(tls_class(exc), error_message(exc))
        else:
            # Reset or closed before the response was whole. On a reused connection before
            # any byte of it, a stale keep-alive: send() resends an idempotent request.
            why = error_message(exc) if exc else "closed before the response was complete"
            self._finish(DISCONNECT, why)

    # -- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.answered:
            raise _NotAnAnswer("bytes after the complete response (an answer nobody asked for)")

    def on_header(self, name: bytes, value: bytes) -> None:
        # Called for every header of every response: the length rules most names out first.
        size = len(name)
        if size == 12:
            if name.lower() == b"content-type" and value.lower().startswith(_EVENT_STREAM):
                self.sse = EventCounter()
        elif size == 14 or size == 17:
            lower = name.lower()
            if lower == b"content-length" or lower == b"transfer-encoding":
                self.framed = True
        elif size == 16 and name.lower() == b"content-encoding":
            self.coding = value
        elif size == 10:
            lower = name.lower()
            if lower == b"keep-alive":
                self.idle_limit = keep_alive_timeout(value.decode("latin-1"))
            elif lower == b"set-cookie":
                if self.set_cookies is None:
                    self.set_cookies = []
                self.set_cookies.append(value.decode("latin-1"))
        if self.headers is not None:
            self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        self.status = status
        if status < 100:
            raise _NotAnAnswer(f"status {status:03d} is not an HTTP status (100-999)")
        if status == 101 and not self.upgrade:
            # RFC 9110 §15.2.2: a server switches only to a protocol the request asked for.
            raise _NotAnAnswer("101 Switching Protocols to a request that asked for no upgrade")
        if 100 <= status < 200 and status != 101:
            self.sse = None
            self.framed = False
            self.coding = b""
            if self.headers is not None:
                self.headers.clear()
            return  # informational: the final response follows on the same message stream
        self.headers_done = True
        if self.coding and not self.head:
            self.decoder = Decoder.for_answer(self.coding.decode("latin-1"))
        if self.head or status in (204, 304):
            self.framed = True
            if self.head:
                # Done here: the parser would wait for a body a HEAD response never has.
                self.reusable = self.parser.should_keep_alive()
                self._parser_spent = True
                self.answered = True

    def on_body(self, body: bytes) -> None:
        if self.answered:  # a body after a HEAD answer: not part of it
            raise _NotAnAnswer("a body after the answer to HEAD (an answer nobody asked for)")
        if not self.first_byte:
            self.first_byte = time.perf_counter()
        self.nbytes += len(body)
        if self.decoder is not None:
            for piece in self.decoder.feed(body):  # DecodeError: see data_received
                self._take(piece)
            return
        if self.sse is not None:
            self.events += self.sse.feed(body)
        keep = self.keep
        if keep is not None and len(keep) < BODY_CAP:
            keep += body[: BODY_CAP - len(keep)]

    def _take(self, data: bytes) -> None:
        """A decoded piece of the body: what events and checks read."""
        if self.sse is not None:
            self.events += self.sse.feed(data)
        keep = self.keep
        if keep is not None and len(keep) < BODY_CAP:
            keep += data[: BODY_CAP - len(keep)]

    def _finish_decoding(self) -> None:
        if self.decoder is not None:
            for piece in self.decoder.finish():
                self._take(piece)

    def on_chunk_complete(self) -> None:
        # llhttp also completes the last, empty chunk; count chunks that carried data.
        if self.nbytes > self._chunk_mark:
            self.chunks += 1
            self._chunk_mark = self.nbytes

    def on_message_complete(self) -> None:
        status = self.status
        if status < 200 and status != 101:
            return
        if self.head:
            return
        self._finish_decoding()
        if self.sse is not None:
            self.events += self.sse.finish()
        # Read here, where llhttp's answer is right: after the message, before the next.
        self.reusable = self.parser.should_keep_alive()
        self.answered = True


class Pool:
    """The connections of one worker, at most ``limit`` open at once (None: unbounded)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        context: Callable[[], ssl.SSLContext],
        limit: int | None,
        routes: Routes = NO_ROUTES,
    ) -> None:
        self.loop = loop
        self.context = context  # called on the first https connection: loading CAs takes time
        self.limit = limit
        self.routes = routes
        self.idle: dict[Origin, list[Connection]] = {}
        self.open: set[Connection] = set()
        self._opening = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def take(self, origin: Origin) -> Connection | None:
        idle = self.idle.get(origin)
        while idle:
            connection = idle.pop()  # the most recently used: the warmest
            # A peer's close already read (closing, not yet lost) is skipped; one still on the
            # wire is not known here: the request that meets it is resent (see send).
            transport = connection.transport
            if connection.closed or transport is None or transport.is_closing():
                continue
            limit = connection.idle_limit
            if limit and time.perf_counter() - connection.idle_since >= limit - KEEP_ALIVE_MARGIN_S:
                connection.abort()  # idle past the server's announced Keep-Alive timeout
                continue
            return connection
        return None

    async def acquire(self, origin: Origin, fresh: bool = False) -> Connection:
        """An idle connection to ``origin`` (unless ``fresh``), else a new one once the bound
        allows it."""
        while True:
            connection = None if fresh else self.take(origin)
            if connection is not None:
                return connection
            if self.limit is None or len(self.open) + self._opening < self.limit:
                break
            if not self._close_an_idle_one():
                waiter = self.loop.create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    if not waiter.done():
                        waiter.cancel()
        self._opening += 1
        try:
            return await self._connect(origin)
        finally:
            self._opening -= 1
            self._wake()

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
        sock = connection.transport.get_extra_info("socket") if connection.transport else None
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.open.add(connection)
        return connection

    def release(self, connection: Connection, now: float) -> None:
        if connection.reusable and not connection.closed:
            connection.idle_since = now
            self.idle.setdefault(connection.origin, []).append(connection)
        else:
            connection.abort()
        if self._waiters:
            self._wake()

    def forget(self, connection: Connection) -> None:
        self.open.discard(connection)
        self._wake()

    def _close_an_idle_one(self) -> bool:
        for idle in self.idle.values():
            while idle:
                connection = idle.pop()
                if not connection.closed:
                    connection.abort()
                    return True
        return False

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for connection in list(self.open):
            connection.abort()
        self.idle.clear()


def with_cookie(data: bytes, cookie: str | None) -> bytes:
    """A prepared request with the user's ``Cookie`` header added after its other headers."""
    if cookie is None:
        return data
    end = data.index(b"\r\n\r\n")
    return data[:end] + b"\r\nCookie: " + cookie.encode("latin-1") + data[end:]


def _connect_class(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return tls_class(exc)
    if isinstance(exc, socket.gaierror):
        return DNS
    # Refused, unreachable, reset during the handshake; and TimeoutError (an OSError): out
    # of time before the request was written (waiting for a connection, or making one), so
    # it never reached the server and is not a timeout of the target's answer.
    if isinstance(exc, OSError):
        return CONNECT
    return OTHER


def _connect_message(exc: BaseException) -> str:
    """As ``client.error_message`` words it for aiohttp: the reason, not the address."""
    if isinstance(exc, TimeoutError):
        return "no connection within the timeout"
    plain_os_error = not isinstance(exc, (ssl.SSLError, socket.gaierror))
    if isinstance(exc, OSError) and plain_os_error and exc.errno and exc.errno > 0:
        return os.strerror(exc.errno)
    return error_message(exc)


class FastClient:
    """Sends the requests of one worker over its own bounded pool."""

    name = "fast"

    def __init__(
        self,
        specs: tuple[RequestSpec, ...],
        context: Callable[[], ssl.SSLContext],
        *,
        server_name: str | None = None,
        limit: int | None = None,
        routes: Routes = NO_ROUTES,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.pool = Pool(self.loop, context, limit, routes)
        self.server_name = server_name
        # One sweep over the connections in flight times requests out: a timer per request
        # (call_at, then cancel) would cost about 3 µs each. A timeout fires at most one
        # sweep late: a twentieth of the shortest timeout, between 2 and 50 ms.
        shortest = min((spec.timeout for spec in specs), default=1.0)
        self._sweep_every = min(max(shortest / 20, 0.002), 0.05)
        self._sweeper = self.loop.call_later(self._sweep_every, self._sweep)
        # Prepared once per endpoint; None where the request must be built per send.
        self._prepared: list[Prepared | str | None] = []
        for spec in specs:
            if spec.templated:
                self._prepared.append(None)
                continue
            try:
                self._prepared.append(
                    prepare(spec.method, spec.url, spec.headers, spec.body, server_name)
                )
            except ValueError:
                self._prepared.append(OTHER)  # every attempt fails alike, counted as such

    async def send(
        self,
        spec: RequestSpec,
        index: int,
        recorder: Recorder,
        due: float | None = None,
        variables: dict[str, str] | None = None,
    ) -> None:
        """Send one request and record its outcome exactly once (see ``client.send``).

        Keeps the task's ``Sending`` slot current, as ``lanes.py`` asks of every client: at
        stop the worker settles a request from it (on the wire: cancelled; not yet: dropped)
        and this records nothing more for it.
        """
        prepared = self._prepared[index]
        url = spec.url
        if prepared is None:
            rendered = render(spec, index, recorder, variables)
            if rendered is None:
                return
            url, headers, body = rendered
            try:
                prepared = prepare(spec.method, url, headers, body, self.server_name)
            except ValueError:
                prepared = OTHER
        sent = time.perf_counter()
        if isinstance(prepared, str):
            recorder.record_error(
                index, prepared, 0, f"{prepared}: a URL or header the wire cannot carry"
            )
            return
        jar = cookie_jar(variables)
        data = prepared.data if jar is None else with_cookie(prepared.data, jar.header(url))
        slot = sending_slot()
        slot.index, slot.on_wire = index, False
        try:
            deadline = sent + spec.timeout
            connection = self.pool.take(prepared.origin)
            reused = connection is not None
            resending = False
            while True:
                if connection is None:
                    try:
                        async with asyncio.timeout(max(deadline - time.perf_counter(), 0.0)):
                            connection = await self.pool.acquire(prepared.origin, fresh=resending)
                    except asyncio.CancelledError:
                        if slot.index is not None:  # not settled by the worker's stop already
                            recorder.record_dropped(index)
                        raise
                    except Exception as exc:  # every failure is a result to count, not a crash
                        kind = _connect_class(exc)
                        why = _connect_message(exc)
                        recorder.record_error(index, kind, 0, f"{kind}: {why}")
                        return
                keep_headers = bool(spec.extract or spec.checks)
                waiter = connection.start(
                    data,
                    deadline,
                    spec.method == "HEAD",
                    spec.needs_body,
                    keep_headers,
                    prepared.upgrade,
                )
                slot.on_wire = True
                try:
                    outcome = await waiter
                except asyncio.CancelledError:
                    connection.waiter = None
                    connection.abort()
                    if slot.index is not None:
                        recorder.record_cancelled(index)
                    raise
                if (
                    outcome == DISCONNECT
                    and reused
                    and connection.head_bytes == 0
                    and resendable(spec.method, spec.headers)
                ):
                    # A stale keep-alive connection: the server closed it idle as the request
                    # went out, and never read it. Once more, on a fresh connection; the
                    # latency still counts from the first attempt. Until that one is written,
                    # a stop counts the request as dropped (the server has not seen it).
                    connection.waiter = None
                    connection.abort()
                    recorder.record_stale_resend(index)
                    connection, reused, resending = None, False, True
                    slot.retract()  # not read: not sent until it is again
                    continue
                break
        finally:
            slot.index = None
        if outcome:
            connection.waiter = None
            connection.abort()
            recorder.record_error(
                index, outcome, connection.nbytes, f"{outcome}: {connection.message}"
            )
            return
        done = time.perf_counter()
        if jar is not None and connection.set_cookies:
            jar.update(connection.set_cookies, url)
        connection.last = (recorder, index)
        self.pool.release(connection, done)
        first_byte = connection.first_byte or done
        start = sent if due is None else min(due, sent)
        status = connection.status
        ok = spec.is_ok(status)
        recorder.record_response(
            index,
            status,
            ok,
            (done - start) * 1e6,
            (done - sent) * 1e6,
            (first_byte - sent) * 1e6,
            connection.nbytes,
            connection.chunks,
            connection.events,
            None if connection.decoder is None else connection.decoder.decoded,
        )
        if spec.checks or (spec.extract and ok and variables is not None):
            answered = CIMultiDict(connection.headers or ())
            kept = bytes(connection.keep or b"")
            judge(spec, index, ok, connection.status, answered, kept, recorder, variables)

    def _sweep(self) -> None:
        now = time.perf_counter()
        for connection in self.pool.open:
            if connection.waiter is not None and connection.deadline <= now:
                connection._finish(TIMEOUT, "no complete answer within the timeout")
        self._sweeper = self.loop.call_later(self._sweep_every, self._sweep)

    async def close(self) -> None:
        self._sweeper.cancel()
        self.pool.close()
        await asyncio.sleep(0)  # let the transports run their connection_lost
