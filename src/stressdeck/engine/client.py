"""One request: send a prepared RequestSpec with aiohttp, time it, classify the outcome."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
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

from stressdeck.engine.exchange import render
from stressdeck.engine.plan import RequestSpec
from stressdeck.engine.stats import Recorder
from stressdeck.engine.tls import tls_class
from stressdeck.engine.users import cookie_jar
from stressdeck.profiles.chain import ExtractionFailed, ResponseBody
from stressdeck.profiles.checks import run_checks
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

# Bodies are read as they arrive and only counted; one is kept, up to this cap, only when
# an extract or a check needs it: a 200 MB or endless body must never be buffered.
BODY_CAP = 1024 * 1024


class _ResponseHandler(ResponseHandler):
    """aiohttp's C parser drops the body reader when a body stops parsing mid-way (a bad
    chunk size): the read would wait for the whole timeout. Hand the parse error to it."""

    def data_received(self, data: bytes) -> None:
        payload = self._payload
        super().data_received(data)
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

    __slots__ = ("index", "_on_wire", "sent")

    def __init__(self) -> None:
        self.index: int | None = None
        self._on_wire = False
        self.sent: SentCounter | None = None

    @property
    def on_wire(self) -> bool:
        return self._on_wire

    @on_wire.setter
    def on_wire(self, value: bool) -> None:
        if value and not self._on_wire and self.sent is not None:
            self.sent.value += 1
        self._on_wire = value


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
        response = await super().send(conn)
        slot = _SENDING.get(None)
        if slot is not None:
            slot.on_wire = True
        return response


REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
MAX_REDIRECTS = 10


class _Answer:
    """One hop's response, as far as counting, redirects and extraction need it."""

    __slots__ = ("status", "headers", "body", "nbytes", "chunks", "events", "sent", "first", "done")

    def __init__(self) -> None:
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
) -> None:
    """Send one request and read its whole body as it arrives (counted, kept only if needed)."""
    keep = bytearray() if keep_body else None
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
        sse = EventCounter() if response.content_type == "text/event-stream" else None
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
            if sse is not None:
                answer.events += sse.feed(data)
            if keep is not None and len(keep) < BODY_CAP:
                keep += data[: BODY_CAP - len(keep)]
        if sse is not None:
            answer.events += sse.finish()
        answer.status = response.status
        answer.headers = response.headers
    answer.body = keep
    answer.done = time.perf_counter()
    if not answer.first:
        answer.first = answer.done


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
    for hop in range(MAX_REDIRECTS + 1):
        answer = _Answer()
        slot.index, slot.on_wire = index, False
        try:
            proxy = routes.proxy_for(str(url)) if routes is not None else None
            cookie = jar.header(str(url)) if jar is not None else None
            await _exchange(
                session,
                method,
                url,
                tuple(headers) + (("Cookie", cookie),) if cookie else headers,
                body,
                timeout,
                spec.needs_body,
                answer,
                server_name,
                proxy,
            )
        except asyncio.CancelledError:
            if slot.index is not None:  # not settled by the worker's stop already
                if slot.on_wire:
                    recorder.record_cancelled(index)
                else:
                    recorder.record_dropped(index)
            raise
        except Exception as exc:  # every failure is a result to count, not a crash
            kind = classify(exc)
            message = error_message(exc)
            if kind == TIMEOUT and not slot.on_wire:
                # The time ran out before the request was written: it never reached the
                # server, so it is not a timeout of the target's answer.
                kind, message = CONNECT, "no connection within the timeout"
            recorder.record_error(index, kind, answer.nbytes, f"{kind}: {message}")
            return
        finally:
            slot.index = None
        if jar is not None and isinstance(answer.headers, MultiMapping):
            if set_cookies := answer.headers.getall("Set-Cookie", ()):
                jar.update(set_cookies, str(url))
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
    extracting = spec.extract and spec.is_ok(answer.status) and variables is not None
    if not (spec.checks or extracting):
        return
    kept = ResponseBody(bytes(answer.body or b""))  # decoded and parsed once for both
    if spec.checks:
        recorder.record_checks(index, *run_checks(spec.checks, answer.status, answer.headers, kept))
    if extracting:
        assert variables is not None
        for extractor in spec.extract:
            try:
                value = extractor.extract(answer.headers, kept)
            except ExtractionFailed as failure:
                recorder.record_extract_failure(index, f"{extractor.variable}: {failure}")
                continue
            if value is not None:
                variables[extractor.variable] = value
