"""HTTP/2: nginx speaking h2c and h2 over TLS counts what we sent, and the protocol's own
failures (RST_STREAM, GOAWAY, a server that does not agree to h2) are counted as such."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest
from certs import TestCA
from nginx import Nginx
from waiting import eventually

from stressdeck.engine import Snapshot, build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.profiles.profile import parse_profile


def plan_for(url: str, tmp_path: Path, load: dict[str, Any], **extra: Any) -> Any:
    endpoint = {"name": "ok", "path": "/ok", "http2": True, **extra.pop("endpoint", {})}
    document = {"name": "h2", "base_url": url, "load": load, "endpoints": [endpoint], **extra}
    return build_plan(parse_profile(document, str(tmp_path / "h2.toml")), Overrides())


async def run(plan: Any) -> Snapshot:
    return await (await start(plan)).wait()


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path)


def served(snapshot: Snapshot) -> int:
    """What we say reached the server: answered, or on the wire when the run stopped."""
    return snapshot.total.requests + snapshot.total.cancelled


async def test_h2c_counts_equal_nginx_and_every_request_was_http2(tmp_path: Path) -> None:
    with Nginx(tmp_path) as nginx:
        final = await run(
            plan_for(
                nginx.url,
                tmp_path,
                {"users": 8, "duration": "1s"},
                endpoint={"checks": ["status == 200", "body contains 'ok'"]},
            )
        )
    logged = nginx.log()
    assert final.total.errors == 0, final.total.error_messages
    assert served(final) == len(logged) > 0
    assert {row.protocol for row in logged} == {"HTTP/2.0"}
    (endpoint,) = final.endpoints
    assert endpoint.client == "http2"
    assert endpoint.checked == endpoint.requests and endpoint.checks_failed == 0
    assert endpoint.checks_passed == 2 * endpoint.requests  # two checks on every answer
    # Multiplexed: 8 users share connections (nginx allows 128 streams on one).
    assert len({row.connection for row in logged}) < 8


async def test_h2_over_tls_with_alpn(tmp_path: Path, ca: TestCA) -> None:
    issued = ca.issue("server")
    with Nginx(tmp_path, cert=issued.cert, key=issued.key) as nginx:
        final = await run(
            plan_for(
                nginx.url, tmp_path, {"users": 4, "duration": "1s"}, tls={"ca_file": str(ca.path)}
            )
        )
    logged = nginx.log()
    assert final.total.errors == 0, final.total.error_messages
    assert served(final) == len(logged) > 0
    assert {row.protocol for row in logged} == {"HTTP/2.0"}


async def test_a_server_that_does_not_agree_to_h2_is_a_protocol_error(
    tmp_path: Path, ca: TestCA
) -> None:
    issued = ca.issue("server")
    with Nginx(tmp_path, http2=False, cert=issued.cert, key=issued.key) as nginx:
        final = await run(
            plan_for(
                nginx.url, tmp_path, {"users": 2, "requests": 6}, tls={"ca_file": str(ca.path)}
            )
        )
    # Nothing was sent over HTTP/1.1 behind the user's back: nginx logs only connections
    # that ended without a request (protocol "-").
    assert {row.protocol for row in nginx.log()} == {"-"}
    assert final.total.requests == 6 and final.total.errors == 6
    (message,) = final.total.error_messages
    assert message == "protocol: the server did not agree to HTTP/2 (ALPN: http/1.1)"


async def test_open_model_keeps_its_contract_and_its_connection_bound(tmp_path: Path) -> None:
    # nginx takes 2 streams per connection; 3 connections at most: 6 requests at once.
    with Nginx(tmp_path, streams=2) as nginx:
        final = await run(
            plan_for(
                nginx.url,
                tmp_path,
                {"model": "open", "rate": 300, "duration": "2s", "connections": 3},
            )
        )
    logged = nginx.log()
    total = final.total
    assert total.errors == 0, total.error_messages
    assert served(final) == len(logged) > 0
    assert len({row.connection for row in logged}) <= 3
    # Every request that fell due is answered, cancelled at the stop or dropped, exactly.
    assert total.due == total.requests + total.cancelled + total.dropped > 0


async def test_streams_beyond_the_servers_limit_wait_instead_of_being_refused(
    tmp_path: Path,
) -> None:
    with Nginx(tmp_path, streams=2) as nginx:
        final = await run(plan_for(nginx.url, tmp_path, {"users": 8, "duration": "1s"}))
    logged = nginx.log()
    assert final.total.errors == 0, final.total.error_messages
    assert served(final) == len(logged) > 0
    # 8 users, 2 streams a connection: at least 4 connections were needed.
    assert len({row.connection for row in logged}) >= 4


# -- the protocol's own failures, from a server built to cause them ---------------------------


class H2Server:
    """A plain-text HTTP/2 server on 127.0.0.1 whose answer to each request a test chooses:
    ``"ok"`` (200), ``"reset"`` (RST_STREAM REFUSED_STREAM) or ``"goaway"`` (GOAWAY taking
    no stream, then the connection closed)."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.received = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        conn = h2.connection.H2Connection(config=config)
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        try:
            while data := await reader.read(65536):
                asked = False
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        self.received += 1
                        asked = True
                        self._answer(conn, event.stream_id)
                writer.write(conn.data_to_send())
                if asked and self.answer == "close":
                    writer.transport.abort()  # gone mid-answer: no GOAWAY, no FIN
                    return
                if asked and self.answer == "bad-frame":
                    # A DATA frame on stream 0: a connection error (RFC 9113 6.1).
                    writer.write(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
                await writer.drain()
                if conn.state_machine.state == h2.connection.ConnectionState.CLOSED:
                    # As a real server shuts down: its side closed, the client's read to
                    # the end (closing with unread bytes would send a RST, which can drop
                    # the GOAWAY before the client reads it).
                    writer.write_eof()
                    while await reader.read(65536):
                        pass
                    break
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            writer.close()

    def _answer(self, conn: h2.connection.H2Connection, stream_id: int) -> None:
        if self.answer in ("hang", "close", "bad-frame"):
            return  # no answer: held, cut off, or a broken frame instead (see _serve)
        if self.answer == "reset":
            conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        elif self.answer == "goaway":
            conn.close_connection(h2.errors.ErrorCodes.NO_ERROR, last_stream_id=0)
        elif self.answer == "sse":
            # Two events in two DATA frames, the second split across the frame boundary.
            conn.send_headers(
                stream_id, [(b":status", b"200"), (b"content-type", b"text/event-stream")]
            )
            conn.send_data(stream_id, b"data: one\n\ndata: tw")
            conn.send_data(stream_id, b"o\n\n", end_stream=True)
        elif self.answer == "json":
            body = b'{"token": "t-%d"}' % stream_id
            conn.send_headers(
                stream_id,
                [
                    (b":status", b"200"),
                    (b"content-type", b"application/json"),
                    (b"set-cookie", b"sid=s1; Path=/"),
                ],
            )
            conn.send_data(stream_id, body, end_stream=True)
        else:
            conn.send_headers(stream_id, [(b":status", b"200"), (b"content-length", b"2")])
            conn.send_data(stream_id, b"ok", end_stream=True)

    def __enter__(self) -> H2Server:
        self._thread.start()
        assert self._ready.wait(10), "test server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def h2_server(request: pytest.FixtureRequest) -> Iterator[H2Server]:
    with H2Server(request.param) as server:
        yield server


@pytest.mark.parametrize(
    ("h2_server", "message"),
    [
        ("reset", "disconnect: stream reset by the server (RST_STREAM REFUSED_STREAM)"),
        ("goaway", "disconnect: GOAWAY NO_ERROR: the server did not take the stream"),
    ],
    indirect=["h2_server"],
)
async def test_reset_and_goaway_are_counted_disconnects(
    h2_server: H2Server, message: str, tmp_path: Path
) -> None:
    final = await run(plan_for(h2_server.url, tmp_path, {"users": 1, "requests": 10}))
    assert final.total.requests == 10 == final.total.errors
    assert set(final.total.error_messages) == {message}
    assert h2_server.received == 10  # each attempt reached the server once: no silent resend


@pytest.mark.parametrize("h2_server", ["ok"], indirect=True)
async def test_a_python_h2_server_answers(h2_server: H2Server, tmp_path: Path) -> None:
    final = await run(plan_for(h2_server.url, tmp_path, {"users": 3, "requests": 30}))
    assert final.total.requests == 30 == h2_server.received
    assert final.total.errors == 0 and final.total.status_counts == {200: 30}


@pytest.mark.parametrize("h2_server", ["sse"], indirect=True)
async def test_sse_events_and_frames_are_counted(h2_server: H2Server, tmp_path: Path) -> None:
    final = await run(plan_for(h2_server.url, tmp_path, {"users": 2, "requests": 10}))
    total = final.total
    assert total.requests == 10 and total.errors == 0
    assert total.events == 20  # two per answer, one split across DATA frames
    assert total.chunks == 20  # a chunk is a DATA frame on HTTP/2
    assert total.bytes == 10 * len(b"data: one\n\ndata: two\n\n")
    assert 0 < total.ttfb_ms.p50 <= total.latency_ms.p50


@pytest.mark.parametrize("h2_server", ["json"], indirect=True)
async def test_extracts_and_checks_run_on_http2_answers(
    h2_server: H2Server, tmp_path: Path
) -> None:
    endpoint = {
        "extract": {"token": "$.token"},
        "checks": ["status == 200", "header:content-type contains 'json'"],
    }
    plan = plan_for(h2_server.url, tmp_path, {"users": 1, "requests": 5}, endpoint=endpoint)
    final = await run(plan)
    (ep,) = final.endpoints
    assert ep.requests == 5 and ep.errors == 0
    assert ep.checks_passed == 10 and ep.checks_failed == 0
    assert not ep.extract_failures


# -- the fault tests, on HTTP/2: each failure in its class, and a stop that loses nothing -----


@pytest.mark.parametrize(
    ("h2_server", "expected", "message"),
    [
        ("hang", "timeout", "timeout: no complete answer within the timeout"),
        ("close", "disconnect", "disconnect: "),
        ("bad-frame", "protocol", "protocol: HTTP/2: "),
    ],
    indirect=["h2_server"],
)
async def test_a_fault_is_counted_in_its_class(
    h2_server: H2Server, expected: str, message: str, tmp_path: Path
) -> None:
    # One user: a server that cuts a connection off mid-read can lose a second user's stream
    # written on it before the cut, which it never read (as on HTTP/1.1, and unknowable).
    plan = plan_for(
        h2_server.url, tmp_path, {"users": 1, "requests": 6}, endpoint={"timeout": "300ms"}
    )
    final = await run(plan)
    total = final.total
    assert total.requests == 6 == total.errors
    assert total.error_counts == {expected: 6}
    assert all(text.startswith(message) for text in total.error_messages), total.error_messages
    assert h2_server.received == 6  # every attempt reached the server, once


@pytest.mark.parametrize("h2_server", ["hang"], indirect=True)
async def test_a_stop_mid_hang_cancels_what_is_on_the_wire_and_loses_nothing(
    h2_server: H2Server, tmp_path: Path
) -> None:
    handle = await start(plan_for(h2_server.url, tmp_path, {"users": 3, "duration": "30s"}))
    await eventually(lambda: h2_server.received >= 3, what="a stream per user at the server")
    final = await handle.stop()
    total = final.total
    assert total.cancelled == 3 and total.requests == 0 and total.dropped == 0
    assert h2_server.received == total.requests + total.cancelled
