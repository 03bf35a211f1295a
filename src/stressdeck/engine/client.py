"""One request: send a prepared RequestSpec with aiohttp, time it, classify the outcome."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

import aiohttp

from stressdeck.engine.plan import RequestSpec
from stressdeck.engine.stats import Recorder

# Error classes, as reported to users.
CONNECT, TIMEOUT, DISCONNECT, DNS, TLS, PROTOCOL, OTHER = (
    "connect", "timeout", "disconnect", "dns", "tls", "protocol", "other")

_CHUNK = 64 * 1024  # read bodies in chunks and count them: a 200 MB body must not be buffered


def classify(exc: BaseException) -> str:
    """Map an exception from aiohttp to one error class."""
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError, ssl.SSLError)):
        return TLS
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return DNS
    if isinstance(exc, aiohttp.ClientConnectorError):
        return DNS if isinstance(exc.os_error, socket.gaierror) else CONNECT
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return TIMEOUT
    if isinstance(exc, aiohttp.ClientPayloadError):
        # A body cut short is a disconnect; a body that does not parse is the server's protocol error.
        text = str(exc).lower()
        if "not enough data" in text:
            return DISCONNECT
        return PROTOCOL if any(word in text for word in ("invalid", "malformed", "bad")) else DISCONNECT
    if isinstance(exc, (aiohttp.ServerDisconnectedError, ConnectionResetError, BrokenPipeError)):
        return DISCONNECT
    if isinstance(exc, aiohttp.ClientResponseError):
        return PROTOCOL
    if isinstance(exc, aiohttp.ClientOSError):
        return DISCONNECT
    return OTHER


def make_timeout(spec: RequestSpec) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=spec.timeout)


async def send(session: aiohttp.ClientSession, spec: RequestSpec, index: int, timeout: aiohttp.ClientTimeout,
               recorder: Recorder, due: float | None = None) -> None:
    """Send one request and record its outcome exactly once.

    ``due`` is the perf_counter instant the request was scheduled for (open model):
    latency is measured from it, so time spent waiting to be sent counts (coordinated
    omission); the service time from the actual send is recorded beside it.
    """
    sent = time.perf_counter()
    first_byte = 0.0
    nbytes = 0
    try:
        async with session.request(spec.method, spec.url, headers=spec.headers, data=spec.body,
                                   timeout=timeout) as response:
            async for chunk in response.content.iter_chunked(_CHUNK):
                if not first_byte:
                    first_byte = time.perf_counter()
                nbytes += len(chunk)
            status = response.status
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
    recorder.record_response(
        index, status, spec.is_ok(status),
        latency_us=(done - start) * 1e6, service_us=(done - sent) * 1e6,
        ttfb_us=(first_byte - sent) * 1e6, nbytes=nbytes,
    )
