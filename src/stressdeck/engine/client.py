"""One request: send a prepared RequestSpec with aiohttp, time it, classify the outcome."""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import time
from typing import Any

import aiohttp
from aiohttp import http_exceptions
from aiohttp.client_proto import ResponseHandler

from stressdeck.engine.plan import RequestSpec
from stressdeck.engine.stats import Recorder
from stressdeck.profiles.chain import MissingVariable, ResponseBody
from stressdeck.profiles.checks import run_checks

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
    if isinstance(
        exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError, ssl.SSLError)
    ):
        return TLS
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


def make_timeout(spec: RequestSpec) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=spec.timeout)


async def send(
    session: aiohttp.ClientSession,
    spec: RequestSpec,
    index: int,
    timeout: aiohttp.ClientTimeout,
    recorder: Recorder,
    due: float | None = None,
    variables: dict[str, str] | None = None,
) -> None:
    """Send one request and record its outcome exactly once.

    ``due`` is the perf_counter instant the request was scheduled for (open model):
    latency is measured from it, so time spent waiting to be sent counts (coordinated
    omission); the service time from the actual send is recorded beside it.
    ``variables`` are the user's chaining variables: read by templates, written by extracts.
    """
    url, headers, body = spec.url, spec.headers, spec.body
    if spec.templated:
        try:
            url, headers, body = spec.render(variables or {})
        except MissingVariable as missing:
            recorder.record_skipped(index, f"missing {{{missing.name}}}")
            return
    keep = bytearray() if spec.needs_body else None
    sent = time.perf_counter()
    first_byte = 0.0
    nbytes = chunks = events = 0
    try:
        async with session.request(
            spec.method, url, headers=headers, data=body, timeout=timeout
        ) as response:
            sse = EventCounter() if response.content_type == "text/event-stream" else None
            content = response.content
            while True:
                data, end_of_chunk = await content.readchunk()
                # aiohttp shares one empty reader between all bodiless responses (204, HEAD)
                # and, once used, it answers (b"", True) forever: at_eof() ends the loop.
                if not data and (not end_of_chunk or content.at_eof()):
                    break
                if not first_byte:
                    first_byte = time.perf_counter()
                nbytes += len(data)
                chunks += end_of_chunk
                if sse is not None:
                    events += sse.feed(data)
                if keep is not None and len(keep) < BODY_CAP:
                    keep += data[: BODY_CAP - len(keep)]
            if sse is not None:
                events += sse.finish()
            status = response.status
            response_headers = response.headers
    except asyncio.CancelledError:
        recorder.record_cancelled(index)
        raise
    except Exception as exc:  # every failure is a result to count, not a crash
        recorder.record_error(index, classify(exc), nbytes)
        return
    done = time.perf_counter()
    if not first_byte:
        first_byte = done
    start = sent if due is None else min(due, sent)
    ok = spec.is_ok(status)
    recorder.record_response(
        index,
        status,
        ok,
        latency_us=(done - start) * 1e6,
        service_us=(done - sent) * 1e6,
        ttfb_us=(first_byte - sent) * 1e6,
        nbytes=nbytes,
        chunks=chunks,
        events=events,
    )
    if not (spec.checks or (spec.extract and ok and variables is not None)):
        return
    kept = ResponseBody(bytes(keep or b""))  # decoded and parsed once for checks and extracts
    if spec.checks:
        recorder.record_checks(index, *run_checks(spec.checks, status, response_headers, kept))
    if spec.extract and ok and variables is not None:
        for extractor in spec.extract:
            value = extractor.extract(response_headers, kept)
            if value is not None:
                variables[extractor.variable] = value
