"""One request: send a prepared RequestSpec with aiohttp, time it, classify the outcome."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import re
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp
from aiohttp import http_exceptions
from aiohttp.client_proto import ResponseHandler
from multidict import MultiMapping
from yarl import URL

from stressdeck import __version__
from stressdeck.engine.decoding import DecodeError, Decoder
from stressdeck.engine.exchange import judge, render
from stressdeck.engine.plan import RequestSpec
from stressdeck.engine.stats import Recorder
from stressdeck.engine.tls import tls_class
from stressdeck.engine.users import cookie_jar
from stressdeck.profiles.routes import Routes

# Error classes, as reported to users.
CONNECT, TIMEOUT, DISCONNECT, DNS, TLS, PROTOCOL, OTHER = (
    "connect",
    "timeout",
    "disconnect",
    "dns",
    "tls",
    "protocol",
    "other",
)
# An answer whose Content-Encoding does not decode, or decodes past decoding.DECODED_CAP.
DECODE = "decode"

# The headers both clients add to every request unless the profile sets its own: nothing
# else (no Accept-Encoding unless asked for, no Content-Type the profile did not give).
USER_AGENT = f"stressdeck/{__version__}"
DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (("User-Agent", USER_AGENT), ("Accept", "*/*"))

# Bodies are read as they arrive and only counted; one is kept, up to this cap, only when
# an extract or a check needs it: a 200 MB or endless body must never be buffered.
BODY_CAP = 1024 * 1024
# A response head (status line and headers, with any 1xx heads before it) past this is a
# protocol error, on both clients: an endless header or an endless stream of 100 Continue
# must not grow memory or hold the loop. Above what browsers take (Chromium: 256 KiB), so a
# valid answer is not refused for its size (docs/clients.md).
MAX_HEAD_BYTES = 1024 * 1024
# Requests sent again when a reused keep-alive connection turns out closed before any byte
# of the answer (the server closed it idle as the request went out, and never read it): the
# methods RFC 9110 §9.2.2 calls idempotent, as Go's net/http and browsers resend them; and
# a request with an Idempotency-Key header, as Go does.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# A connection idle for the server's announced ``Keep-Alive: timeout=N`` less this margin is
# not reused: the server's timer and ours start a round trip apart.
KEEP_ALIVE_MARGIN_S = 0.1
# A header value may hold visible characters, spaces, tabs and bytes from 0x80 (RFC 9110
# §5.5 field-vchar); any other control character makes the response a protocol error, as
# llhttp (Node.js's parser, the fast client's) has it.
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_EMPTY = aiohttp.streams.EMPTY_PAYLOAD


class NotAnAnswer(aiohttp.ClientError):
    """What came back is not an answer to the request: a protocol error."""


def keep_alive_timeout(value: str) -> float:
    """The ``timeout=N`` of a Keep-Alive header value, in seconds; 0.0 when absent or bad."""
    for part in value.split(","):
        key, _, number = part.partition("=")
        if key.strip().lower() == "timeout":
            try:
                seconds = float(number.strip())
            except ValueError:
                return 0.0
            return seconds if 0 < seconds < 86_400 else 0.0
    return 0.0


class _ResponseHandler(ResponseHandler):
    """aiohttp's connection protocol, holding it to the rules the fast client keeps.

    - Only an answer is an answer: bytes after the final answer to a request is complete
      (in the same read, or later on the idle connection) close the connection and are never
      taken as the next request's answer (``stray``; ``last`` counts them when idle).
    - The head (with any 1xx heads) is bounded by MAX_HEAD_BYTES.
    - Whether the request went out on a reused connection, and whether any byte came back
      for it (``carried``, ``received``): a stale keep-alive connection is resent.
    - A server's ``Keep-Alive: timeout=N`` is honoured (``is_connected``).
    - aiohttp's C parser drops the body reader when a body stops parsing mid-way (a bad
      chunk size): the read would wait for the whole timeout. The parse error is handed to it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.carried = 0  # requests sent on this connection
        self.received = 0  # bytes received for the request out now
        self.stray = ""  # set: bytes came after the complete answer (the error's text)
        self.unasked = False  # bytes came in a later read, on the idle connection
        self.last: tuple[Recorder, int] | None = None  # where an idle connection's stray counts
        self._final: Any = None  # the final answer's body reader, once its head arrived
        self._informational = False  # a 1xx head came before the final one
        self._answered = True  # no request out, or its answer complete
        self._idle_since = 0.0
        self._idle_limit = 0.0

    def set_response_params(self, **kwargs: Any) -> None:  # type: ignore[override]
        super().set_response_params(**kwargs)  # once per request, before it is written
        self.carried += 1
        self.received = 0
        self.stray = ""
        self.unasked = False
        self.last = None
        self._final = None
        self._informational = False
        self._answered = False

    def take_unasked(self) -> None:
        """Count bytes that came on the idle connection, once the answer before them is
        counted (``last``: set by ``send`` then)."""
        if self.unasked and self.last is not None:
            recorder, index = self.last
            recorder.record_unasked(index)
            self.last = None

    def is_connected(self) -> bool:
        limit = self._idle_limit
        if (
            limit
            and self._answered
            and self._loop.time() - self._idle_since >= limit - KEEP_ALIVE_MARGIN_S
        ):
            return False  # idle past the server's announced Keep-Alive timeout: not reused
        return super().is_connected()

    def feed_data(self, data: Any, size: int = 0) -> None:  # type: ignore[override]
        message, payload = data
        code = message.code
        if self._final is not None:
            self._refuse("bytes after the complete response (an answer nobody asked for)")
            return
        if code < 100 or code > 199 or code == 101:
            self._final = payload
            announced = message.headers.get("Keep-Alive")
            self._idle_limit = keep_alive_timeout(announced) if announced else 0.0
        elif self._informational:
            # Only the first 1xx of an answer is passed on (it releases a body held for
            # Expect: 100-continue); the rest are skipped here, as aiohttp would skip them,
            # but without queueing each one: an endless stream of them would grow the queue
            # and hold the loop while aiohttp drains it (MAX_HEAD_BYTES ends the stream).
            return
        else:
            self._informational = True
        super().feed_data(data, size)

    def _refuse(self, why: str) -> None:
        if not self._answered:
            self.stray = why  # in the read that completed the answer: that request's error
        elif not self.unasked:
            self.unasked = True  # in a later read: no request's (see take_unasked)
            self.take_unasked()
        self._should_close = True
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if not data:
            super().data_received(data)
            return
        if self._answered and self._parser is not None and not self._upgraded:
            self._refuse("bytes after the complete response (an answer nobody asked for)")
            return
        self.received += len(data)
        if self._final is None and self.received > MAX_HEAD_BYTES:
            self.set_exception(NotAnAnswer(f"response head over {MAX_HEAD_BYTES // 1024} KiB"))
            self._should_close = True
            if self.transport is not None:
                self.transport.close()
            return
        payload = self._payload
        super().data_received(data)
        final = self._final
        if final is not None and (final is _EMPTY or final.is_eof()):
            self._answered = True
            self._idle_since = self._loop.time()
        error = self.exception()
        if (
            payload is not None
            and error is not None
            and payload.exception() is None
            and not payload.is_eof()
        ):
            payload.set_exception(
                aiohttp.ClientPayloadError(
                    f"Response payload is not completed: invalid body ({error})"
                )
            )


class Connector(aiohttp.TCPConnector):
    """A TCPConnector whose connections use ``_ResponseHandler``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # aiohttp types the factory as partial[ResponseHandler]; ours builds the subclass.
        self._factory = functools.partial(_ResponseHandler, loop=self._loop)  # type: ignore[assignment]

    async def _get(self, key: Any, traces: Any) -> Any:
        if _FRESH.get():
            return None  # a resend after a stale keep-alive connection: a fresh one
        return await super()._get(key, traces)


class RoutedResolver(aiohttp.abc.AbstractResolver):
    """``--connect-to`` for aiohttp: the mapped address is resolved in place of the URL's
    host (the URL, Host header and TLS name stay the URL's)."""

    def __init__(self, routes: Routes) -> None:
        self._routes = routes
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        address, to_port = self._routes.address(host, port)
        found = await self._inner.resolve(address.strip("[]"), to_port, family)
        return [{**result, "hostname": host} for result in found]

    async def close(self) -> None:
        await self._inner.close()


class EventCounter:
    """Server-sent events in a stream read in arbitrary pieces: an event is dispatched by a
    blank line after at least one field line; lines end in LF, CRLF or CR."""

    def __init__(self) -> None:
        self._partial = b""  # the unfinished last line, kept whole across reads
        self._fields = False  # the event being read has a line already

    def feed(self, data: bytes) -> int:
        text = self._partial + data
        # A CR at the very end may be the first half of a CRLF: decide with the next read.
        cut = len(text) - 1 if text.endswith(b"\r") else len(text)
        lines = text[:cut].replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        # Only whether the unfinished line is empty matters: an endless line must not grow here.
        self._partial = (lines.pop() + text[cut:])[-2:]
        events = 0
        for line in lines:
            if line:
                self._fields = True
            elif self._fields:
                events += 1
                self._fields = False
        return events

    def finish(self) -> int:
        """At the end of the body: a CR held back was a line end after all."""
        return self.feed(b"\n") if self._partial.endswith(b"\r") else 0


def classify(exc: BaseException) -> str:
    """Map an exception from aiohttp to one error class."""
    if isinstance(exc, NotAnAnswer):
        return PROTOCOL
    if isinstance(exc, DecodeError):
        return DECODE
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return tls_class(exc.certificate_error)
    if isinstance(exc, aiohttp.ClientSSLError):
        return tls_class(exc.os_error)
    if isinstance(exc, ssl.SSLError):
        return tls_class(exc)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return DNS
    if isinstance(exc, aiohttp.ClientConnectorError):
        return DNS if isinstance(exc.os_error, socket.gaierror) else CONNECT
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return TIMEOUT
    if isinstance(exc, http_exceptions.HttpProcessingError):
        # aiohttp's pure-Python parser raises these raw (not as ClientError) mid-body.
        return DISCONNECT if "not enough data" in str(exc).lower() else PROTOCOL
    if isinstance(exc, aiohttp.ClientPayloadError):
        # A body cut short is a disconnect; a body that does not parse is the server's protocol error.
        text = str(exc).lower()
        if "not enough data" in text:
            return DISCONNECT
        return (
            PROTOCOL
            if any(word in text for word in ("invalid", "malformed", "bad"))
            else DISCONNECT
        )
    if isinstance(exc, (aiohttp.ServerDisconnectedError, ConnectionResetError, BrokenPipeError)):
        return DISCONNECT
    if isinstance(exc, aiohttp.ClientResponseError):
        return PROTOCOL
    if isinstance(exc, aiohttp.ClientOSError):
        return DISCONNECT
    return OTHER


MESSAGE_LIMIT = 160  # characters of an error's text kept: enough to read, bounded


def error_message(exc: BaseException) -> str:
    """What went wrong in words, without the parts that vary request to request where that
    is easy (a connect error's address is the target's, already on screen)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        text = os.strerror(os_error.errno) if os_error.errno else str(os_error)
    elif isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        text = "no complete answer within the timeout"
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def make_timeout(spec: RequestSpec) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=spec.timeout)


class Sending:
    """What one sender (a lane of the open model, a user of the closed one) has out now.

    ``index`` is the endpoint of the request in progress (None between requests);
    ``on_wire`` turns True once the request was handed to its connection. At stop the
    worker settles every sender from these at once, so its final figures go out without
    waiting for aiohttp to unwind each cancelled request. Each sender's task sets its own
    with ``sending_slot()``; ``send`` and ``Request`` find it through a context variable.

    ``sent``, when the worker gives one, counts every request handed to a connection as it
    happens, not at the next tick: shared memory the runner reads even when the worker's
    loop is stuck, so what a stalled worker sent is never lost from the counts.
    """

    __slots__ = ("index", "_on_wire", "sent", "protocol")

    def __init__(self) -> None:
        self.index: int | None = None
        self._on_wire = False
        self.sent: SentCounter | None = None
        # aiohttp only: the connection the request went out on (see _ResponseHandler).
        self.protocol: _ResponseHandler | None = None

    @property
    def on_wire(self) -> bool:
        return self._on_wire

    @on_wire.setter
    def on_wire(self, value: bool) -> None:
        if value and not self._on_wire and self.sent is not None:
            self.sent.value += 1
        self._on_wire = value

    def retract(self) -> None:
        """The request on the wire never reached the server (a stale keep-alive connection
        closed before reading it): not sent, and not on the wire, until it is sent again."""
        if self._on_wire and self.sent is not None:
            self.sent.value -= 1
        self._on_wire = False


class SentCounter(Protocol):
    """A ctypes integer: ``ctypes.c_int64()`` in a thread, a shared ``RawValue`` across processes."""

    value: int


_SENDING: contextvars.ContextVar[Sending] = contextvars.ContextVar("stressdeck_sending")


def sending_slot() -> Sending:
    """The current task's Sending, created on first use (a task has its own context)."""
    slot = _SENDING.get(None)
    if slot is None:
        slot = Sending()
        _SENDING.set(slot)
    return slot


class Request(aiohttp.ClientRequest):
    """aiohttp's request, marking the moment it was handed to the connection.

    A request cancelled at stop before that moment never left the generator (it was still
    connecting, say): it is ``dropped``, not ``cancelled``, so our count of what went out
    equals the server's count of what came in.
    """

    async def send(self, conn: Any) -> aiohttp.ClientResponse:
        slot = _SENDING.get(None)
        if slot is not None:
            protocol = conn.protocol
            slot.protocol = protocol if isinstance(protocol, _ResponseHandler) else None
        response = await super().send(conn)
        if slot is not None:
            slot.on_wire = True
        return response


# Set for a resend: the connector opens a fresh connection instead of taking an idle one.
_FRESH: contextvars.ContextVar[bool] = contextvars.ContextVar("stressdeck_fresh", default=False)


REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
MAX_REDIRECTS = 10


class _Answer:
    """One hop's response, as far as counting, redirects and extraction need it."""

    __slots__ = (
        "status",
        "headers",
        "body",
        "nbytes",
        "chunks",
        "events",
        "sent",
        "first",
        "done",
        "decoder",
    )

    def __init__(self) -> None:
        self.decoder: Decoder | None = None  # set for a gzip or deflate body
        self.status = 0
        self.headers: Mapping[str, str] = {}
        self.body: bytearray | None = None
        self.nbytes = self.chunks = self.events = 0
        self.sent = self.first = self.done = 0.0


async def _exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: str | URL,
    headers: Any,
    body: bytes | None,
    timeout: aiohttp.ClientTimeout,
    keep_body: bool,
    answer: _Answer,
    server_name: str | None = None,
    proxy: str | None = None,
    upgrade: bool = False,
) -> None:
    """Send one request and read its whole body as it arrives (counted, kept only if needed).

    Raises NotAnAnswer where what came back is not an answer (see ``_check_head``)."""
    keep = bytearray() if keep_body else None
    if not answer.sent:  # a resend keeps the first attempt's time
        answer.sent = time.perf_counter()
    async with session.request(
        method,
        url,
        headers=headers,
        data=body,
        timeout=timeout,
        allow_redirects=False,
        server_hostname=server_name,
        proxy=proxy,
    ) as response:
        _check_head(response, upgrade)
        sse = EventCounter() if response.content_type == "text/event-stream" else None
        decoder = Decoder.for_answer(response.headers.get("Content-Encoding"))
        answer.decoder = decoder
        content = response.content
        while True:
            data, end_of_chunk = await content.readchunk()
            # aiohttp shares one empty reader between all bodiless responses (204, HEAD)
            # and, once used, it answers (b"", True) forever: at_eof() ends the loop.
            if not data and (not end_of_chunk or content.at_eof()):
                break
            if not answer.first:
                answer.first = time.perf_counter()
            answer.nbytes += len(data)
            answer.chunks += end_of_chunk
            # Events and checks read the body as decoded; bytes count it as it came.
            for piece in (data,) if decoder is None else decoder.feed(data):
                if sse is not None:
                    answer.events += sse.feed(piece)
                if keep is not None and len(keep) < BODY_CAP:
                    keep += piece[: BODY_CAP - len(keep)]
        for piece in () if decoder is None else decoder.finish():
            if sse is not None:
                answer.events += sse.feed(piece)
            if keep is not None and len(keep) < BODY_CAP:
                keep += piece[: BODY_CAP - len(keep)]
        if sse is not None:
            answer.events += sse.finish()
        slot = _SENDING.get(None)
        protocol = slot.protocol if slot is not None else None
        if protocol is not None and protocol.stray:
            raise NotAnAnswer(protocol.stray)
        answer.status = response.status
        answer.headers = response.headers
    answer.body = keep
    answer.done = time.perf_counter()
    if not answer.first:
        answer.first = answer.done


def _check_head(response: aiohttp.ClientResponse, upgrade: bool) -> None:
    """The rules the fast client's parser (llhttp, strict) keeps, kept here too."""
    status = response.status
    if status < 100 or status > 999:
        raise NotAnAnswer(f"status {status:03d} is not an HTTP status (100-999)")
    if status == 101 and not upgrade:
        # RFC 9110 §15.2.2: a server switches only to a protocol the request asked for.
        raise NotAnAnswer("101 Switching Protocols to a request that asked for no upgrade")
    for _, value in response.raw_headers:
        if _BAD_VALUE.search(value):
            raise NotAnAnswer("Invalid header value char")


def resendable(method: str, headers: Any) -> bool:
    """Whether a request may be sent again after a stale keep-alive connection."""
    if method in IDEMPOTENT:
        return True
    names = headers.keys() if isinstance(headers, Mapping) else (name for name, _ in headers)
    return any(name.lower() == "idempotency-key" for name in names)


async def _attempts(
    session: aiohttp.ClientSession,
    spec: RequestSpec,
    index: int,
    method: str,
    url: str | URL,
    headers: Any,
    body: bytes | None,
    timeout: aiohttp.ClientTimeout,
    recorder: Recorder,
    answer: _Answer,
    server_name: str | None,
    upgrade: bool,
    proxy: str | None = None,
) -> bool:
    """One request, sent once more on a fresh connection when the reused keep-alive one was
    found closed before any byte of the answer (the server never read it); False when it
    ended in an error, recorded here. aiohttp's own silent retry is off (see AiohttpClient):
    this one is counted (``stale_resends``) and keeps the first attempt's time."""
    slot = sending_slot()
    resent = False
    while True:
        slot.protocol = None
        token = _FRESH.set(resent)
        try:
            await _exchange(
                session,
                method,
                url,
                headers,
                body,
                timeout,
                spec.needs_body,
                answer,
                server_name,
                proxy=proxy,
                upgrade=upgrade,
            )
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure is a result to count, not a crash
            kind = classify(exc)
            protocol = slot.protocol
            if (
                not resent
                and kind == DISCONNECT
                and protocol is not None
                and protocol.carried > 1
                and protocol.received == 0
                and resendable(method, headers)
            ):
                recorder.record_stale_resend(index)
                resent = True
                slot.retract()  # a stop before the resend is written: dropped
                left = spec.timeout - (time.perf_counter() - answer.sent)
                timeout = aiohttp.ClientTimeout(total=max(left, 0.001))
                continue
            message = error_message(exc)
            if kind == TIMEOUT and not slot.on_wire:
                # The time ran out before the request was written: it never reached the
                # server, so it is not a timeout of the target's answer.
                kind, message = CONNECT, "no connection within the timeout"
            recorder.record_error(index, kind, answer.nbytes, f"{kind}: {message}")
            return False
        finally:
            _FRESH.reset(token)


def _redirect(spec: RequestSpec, url: str | URL, answer: _Answer) -> URL | None:
    """Where a followed redirect leads, or None when this answer is final."""
    if not spec.follow_redirects or answer.status not in REDIRECT_STATUSES:
        return None
    location = answer.headers.get("Location")
    if not location:
        return None
    try:
        return URL(str(url)).join(URL(location))
    except ValueError:
        return None


async def send(
    session: aiohttp.ClientSession,
    spec: RequestSpec,
    index: int,
    timeout: aiohttp.ClientTimeout,
    recorder: Recorder,
    due: float | None = None,
    variables: dict[str, str] | None = None,
    server_name: str | None = None,
    routes: Routes | None = None,
) -> None:
    """Send one request and record its outcome exactly once (once per hop of a redirect).

    ``due`` is the perf_counter instant the request was scheduled for (open model):
    latency is measured from it, so time spent waiting to be sent counts (coordinated
    omission); the service time from the actual send is recorded beside it.
    ``variables`` are the user's chaining variables: read by templates, written by extracts.

    A 3xx is a status like any other unless the endpoint has ``follow_redirects``; then
    every hop is one counted request (a followed hop is never an error: the final answer
    is judged by ``expect``), and a hop that would leave the plan's allowed hosts is not
    sent but counted as skipped with the reason.
    """
    url: str | URL = spec.url
    headers: Any = spec.headers
    body = spec.body
    if spec.templated:
        rendered = render(spec, index, recorder, variables)
        if rendered is None:
            return
        url, headers, body = rendered
    method = spec.method
    slot = sending_slot()
    jar = cookie_jar(variables)
    names = headers.keys() if isinstance(headers, Mapping) else (name for name, _ in headers)
    upgrade = any(name.lower() == "upgrade" for name in names)
    for hop in range(MAX_REDIRECTS + 1):
        answer = _Answer()
        slot.index, slot.on_wire = index, False
        try:
            proxy = routes.proxy_for(str(url)) if routes is not None else None
            cookie = jar.header(str(url)) if jar is not None else None
            if not await _attempts(
                session,
                spec,
                index,
                method,
                url,
                tuple(headers) + (("Cookie", cookie),) if cookie else headers,
                body,
                timeout,
                recorder,
                answer,
                server_name,
                upgrade,
                proxy,
            ):
                return
        except asyncio.CancelledError:
            if slot.index is not None:  # not settled by the worker's stop already
                if slot.on_wire:
                    recorder.record_cancelled(index)
                else:
                    recorder.record_dropped(index)
            raise
        finally:
            slot.index = None
        if jar is not None and isinstance(answer.headers, MultiMapping):
            if set_cookies := answer.headers.getall("Set-Cookie", ()):
                jar.update(set_cookies, str(url))
        protocol = slot.protocol
        if protocol is not None:
            # Bytes arriving on the idle connection from here on are no request's answer.
            protocol.last = (recorder, index)
            protocol.take_unasked()
        target = _redirect(spec, url, answer)
        start = answer.sent if due is None or hop else min(due, answer.sent)
        recorder.record_response(
            index,
            answer.status,
            target is not None or spec.is_ok(answer.status),
            latency_us=(answer.done - start) * 1e6,
            service_us=(answer.done - answer.sent) * 1e6,
            ttfb_us=(answer.first - answer.sent) * 1e6,
            nbytes=answer.nbytes,
            chunks=answer.chunks,
            events=answer.events,
            decoded_bytes=None if answer.decoder is None else answer.decoder.decoded,
        )
        if target is None:
            break
        if not spec.redirect_allowed(target):
            recorder.record_skipped(index, f"redirect to {target.host} not followed (not allowed)")
            return
        if hop == MAX_REDIRECTS:
            recorder.record_skipped(index, f"more than {MAX_REDIRECTS} redirects")
            return
        if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
            method, body = "GET", None  # as browsers and curl -L do
        url = target
    # Checks judge each request's final answer (a followed redirect hop is not judged).
    ok = spec.is_ok(answer.status)
    if not (spec.checks or (spec.extract and ok and variables is not None)):
        return
    judge(
        spec,
        index,
        ok,
        answer.status,
        answer.headers,
        bytes(answer.body or b""),
        recorder,
        variables,
    )
