"""The HTTP/2 client: many requests as streams on a few connections, framed by ``h2``.

One ``Http2Client`` per worker keeps at most ``limit`` connections per worker (the same bound
the HTTP/1.1 clients keep), and opens a new one only when every open connection carries as
many streams as it may: the server's ``SETTINGS_MAX_CONCURRENT_STREAMS``, and never more than
``MAX_STREAMS``. Over TLS, HTTP/2 is agreed by ALPN (a server that does not agree is a
``protocol`` error, never a silent fall back to HTTP/1.1); over plain http it is spoken with
prior knowledge (h2c), as ``curl --http2-prior-knowledge`` and h2load do.

The contract is the HTTP/1.1 clients': latency from the due time, one counted request per
attempt with one status or one error class, no redirect followed, no silent resend; at stop a
stream on the wire is ``cancelled``, a request still waiting for a stream ``dropped``
(``lanes.py``). How the protocol's own failures are counted:

- ``RST_STREAM`` from the server: ``disconnect`` (``REFUSED_STREAM``: the server says it did
  not process the request; it is still one counted attempt, as every other failure);
- ``GOAWAY``: the streams the server did not take (above its last stream id) and those
  still open when the connection ends are ``disconnect``; no new stream goes on that
  connection;
- a frame that breaks the protocol: ``protocol`` for every stream of the connection.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import time
from collections.abc import Callable

from multidict import CIMultiDict
from yarl import URL

from stressdeck import __version__
from stressdeck.engine.client import (
    CONNECT,
    DNS,
    OTHER,
    PROTOCOL,
    TIMEOUT,
    error_message,
    sending_slot,
)
from stressdeck.engine.dial import NO_ROUTES
from stressdeck.engine.exchange import judge, render
from stressdeck.engine.http2_pool import Connection, NotHttp2, Origin, Pool
from stressdeck.engine.plan import RequestSpec
from stressdeck.engine.stats import Recorder
from stressdeck.engine.tls import tls_class
from stressdeck.engine.users import cookie_jar
from stressdeck.profiles.routes import Routes

USER_AGENT = f"stressdeck/{__version__}"
# Connection-specific headers HTTP/2 forbids (RFC 9113 8.2.2); Host becomes :authority.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host", "te"}
)


def _connect_failure(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, NotHttp2):
        return PROTOCOL, str(exc)
    if isinstance(exc, ssl.SSLError):
        return tls_class(exc), error_message(exc)
    if isinstance(exc, socket.gaierror):
        return DNS, error_message(exc)
    if isinstance(exc, TimeoutError):
        # Out of time before the request was written: it never reached the server.
        return CONNECT, "no connection within the timeout"
    if isinstance(exc, OSError):
        return CONNECT, error_message(exc)
    return OTHER, error_message(exc)


def request_headers(
    method: str, url: str, headers: tuple[tuple[str, str], ...], body: bytes | None
) -> tuple[Origin, list[tuple[bytes, bytes]]]:
    """The origin and the header block of one request; raises ValueError for what HTTP/2
    cannot carry. Defaults as the HTTP/1.1 clients send them (User-Agent, Accept)."""
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise ValueError(f"not an http(s) URL: {url}")
    host = parsed.raw_host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    authority = f"[{host}]" if ":" in host else host
    if not parsed.is_default_port():
        authority += f":{port}"
    given = {name.lower() for name, _ in headers}
    block: list[tuple[bytes, bytes]] = [
        (b":method", method.encode("ascii")),
        (b":scheme", parsed.scheme.encode("ascii")),
        (b":authority", authority.encode("idna" if not host.isascii() else "ascii")),
        (b":path", (parsed.raw_path_qs or "/").encode("ascii")),
    ]
    if parsed.raw_user is not None and "authorization" not in given:
        pair = f"{parsed.user or ''}:{parsed.password or ''}".encode()
        block.append((b"authorization", b"Basic " + base64.b64encode(pair)))
    if "user-agent" not in given:
        block.append((b"user-agent", USER_AGENT.encode("ascii")))
    if "accept" not in given:
        block.append((b"accept", b"*/*"))
    for name, value in headers:
        lower = name.lower()
        if lower in _HOP_BY_HOP or lower == "content-length":
            continue
        if any(bad in value for bad in ("\r", "\n", "\x00")):
            raise ValueError("a CR, LF or NUL inside a header")
        block.append((lower.encode("latin-1"), value.encode("utf-8")))
    if body is not None or method in ("POST", "PUT", "PATCH"):
        block.append((b"content-length", str(len(body or b"")).encode("ascii")))
    return (parsed.scheme, host, port, None), block


class Http2Client:
    """Sends the HTTP/2 requests of one worker over its own bounded pool."""

    name = "http2"

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
        self._prepared: list[tuple[Origin, list[tuple[bytes, bytes]]] | str | None] = []
        for spec in specs:
            if spec.templated:
                self._prepared.append(None)
                continue
            try:
                self._prepared.append(self._prepare(spec.method, spec.url, spec.headers, spec.body))
            except ValueError:
                self._prepared.append(OTHER)

    def _prepare(
        self, method: str, url: str, headers: tuple[tuple[str, str], ...], body: bytes | None
    ) -> tuple[Origin, list[tuple[bytes, bytes]]]:
        (scheme, host, port, _), block = request_headers(method, url, headers, body)
        return (scheme, host, port, self.server_name), block

    async def send(
        self,
        spec: RequestSpec,
        index: int,
        recorder: Recorder,
        due: float | None = None,
        variables: dict[str, str] | None = None,
    ) -> None:
        """Send one request as one stream and record its outcome exactly once (see
        ``fasthttp.FastClient.send``: the same slot rules, the same figures)."""
        prepared = self._prepared[index]
        body = spec.body
        url = spec.url
        if prepared is None:
            rendered = render(spec, index, recorder, variables)
            if rendered is None:
                return
            url, headers, body = rendered
            try:
                prepared = self._prepare(spec.method, url, headers, body)
            except ValueError:
                prepared = OTHER
        sent = time.perf_counter()
        if isinstance(prepared, str):
            recorder.record_error(
                index, prepared, 0, f"{prepared}: a URL or header HTTP/2 cannot carry"
            )
            return
        origin, block = prepared
        jar = cookie_jar(variables)
        cookie = jar.header(url) if jar is not None else None
        if cookie is not None:
            block = [*block, (b"cookie", cookie.encode("latin-1"))]
        slot = sending_slot()
        slot.index, slot.on_wire = index, False
        stream_id = 0
        connection: Connection | None = None
        try:
            try:
                async with asyncio.timeout(spec.timeout):
                    connection = await self.pool.acquire(origin)
            except asyncio.CancelledError:
                if slot.index is not None:  # not settled by the worker's stop already
                    recorder.record_dropped(index)
                raise
            except Exception as exc:  # every failure is a result to count, not a crash
                kind, why = _connect_failure(exc)
                recorder.record_error(index, kind, 0, f"{kind}: {why}")
                return
            stream_id, stream = connection.start(block, body, spec.needs_body)
            slot.on_wire = True
            try:
                async with asyncio.timeout(max(sent + spec.timeout - time.perf_counter(), 0)):
                    if body:
                        await connection.send_body(stream_id, body)
                    outcome = await stream.waiter
            except asyncio.CancelledError:
                connection.cancel(stream_id)
                if slot.index is not None:
                    recorder.record_cancelled(index)
                raise
            except TimeoutError:
                connection.cancel(stream_id)
                outcome, stream.message = TIMEOUT, "no complete answer within the timeout"
        finally:
            slot.index = None
        connection.finished(stream_id)
        if outcome:
            recorder.record_error(index, outcome, stream.nbytes, f"{outcome}: {stream.message}")
            return
        if jar is not None:
            set_cookies = [value for name, value in stream.headers if name == "set-cookie"]
            if set_cookies:
                jar.update(set_cookies, url)
        done = time.perf_counter()
        first_byte = stream.first_byte or done
        start = sent if due is None else min(due, sent)
        status = stream.status
        ok = spec.is_ok(status)
        recorder.record_response(
            index,
            status,
            ok,
            (done - start) * 1e6,
            (done - sent) * 1e6,
            (first_byte - sent) * 1e6,
            stream.nbytes,
            stream.chunks,
            stream.events,
        )
        if spec.checks or (spec.extract and ok and variables is not None):
            answer_headers = CIMultiDict(stream.headers)
            body_kept = bytes(stream.keep or b"")
            judge(spec, index, ok, status, answer_headers, body_kept, recorder, variables)

    async def close(self) -> None:
        self.pool.close()
        await asyncio.sleep(0)  # let the transports run their connection_lost
