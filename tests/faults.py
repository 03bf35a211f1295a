"""A fault target: an HTTP/1.1 server on 127.0.0.1 that misbehaves on purpose, one path per fault.

Written on raw ``asyncio`` streams rather than aiohttp.web, which is too well-behaved to
reset a connection mid-header or send a broken status line. It runs on its own event loop
in a daemon thread, so a fault that stalls (on purpose) never stalls the engine under test.

Every path counts the requests it received (a complete request head), so a test can compare
what the server saw with what the engine counted. Every loop here is bounded in time or
size: an "endless" body still ends after ``ENDLESS_CAP_S``, a hang after ``HANG_CAP_S``.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
import threading
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

HUGE_BYTES = 200 * 1024 * 1024  # the "huge" body: 200 MB, sent in CHUNK pieces, never held whole
CHUNK = 64 * 1024
DRIP_BYTES = 10  # the "drip" body: one byte every DRIP_EVERY_S, 0.5 s in all
DRIP_EVERY_S = 0.05
LATE_S = 10.0  # "late" answers after this long: past any timeout a test sets
SLOW_S = 0.005  # "slow" answers after this long: a connection carries 200 requests/s at most
HANG_CAP_S = 60.0  # "hang" never answers within a test; this only bounds the task
ENDLESS_CAP_S = 60.0  # an "endless" body ends after this long, or when the client goes
RESET_PAUSE_S = 0.01  # let the partial bytes reach the client before the RST

_FILLER = b"x" * CHUNK
_BAD_STATUS_LINES = (
    b"HTTP/1.1 2OO OK\r\n",  # letters in the code
    b"HTTP/1.1\r\n",  # no code at all
    b"HTTX/1.1 200 OK\r\n",  # not HTTP
    b"\x00\x01\x02 nonsense\r\n",  # binary garbage
    b"HTTP/1.1 99999 Huge\r\n",  # a code out of range
)
_BAD_HEADERS = (
    b"X-No-Colon-Here\r\n",  # a header line without a colon
    b"Bad Name: x\r\n",  # a space inside a header name
    b"Content-Length: abc\r\n",  # a length that is not a number
    b"X-Null: a\x00b\r\n",  # a NUL inside a value
    b"Content-Length: -1\r\n",  # a negative length
    b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n",  # both framings at once
    b"X(y): z\r\n",  # a separator inside a header name
)

Reader, Writer = asyncio.StreamReader, asyncio.StreamWriter
Handler = Callable[["FaultServer", Reader, Writer], Awaitable[bool]]


def response_head(status: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def reset(writer: Writer) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# -- one coroutine per fault; True keeps the connection open for the next request ---------


async def ok(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """The control: a plain 200."""
    writer.write(response_head("200 OK", {"Content-Length": "2"}) + b"ok")
    await writer.drain()
    return True


async def hang(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """Read the request, then never answer."""
    await asyncio.sleep(HANG_CAP_S)
    return False


async def late(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """Read the request, send nothing for LATE_S, then answer."""
    await asyncio.sleep(LATE_S)
    return await ok(server, reader, writer)


async def slow(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """Read the request, answer after SLOW_S: a target whose connections have a ceiling."""
    await asyncio.sleep(SLOW_S)
    return await ok(server, reader, writer)


async def reset_headers(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/pl")
    await writer.drain()
    await asyncio.sleep(RESET_PAUSE_S)
    reset(writer)
    return False


async def reset_body(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    writer.write(response_head("200 OK", {"Content-Length": "100000"}) + _FILLER[:1000])
    await writer.drain()
    await asyncio.sleep(RESET_PAUSE_S)
    reset(writer)
    return False


async def bad_status(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    line = _BAD_STATUS_LINES[next(server.variant["bad_status"]) % len(_BAD_STATUS_LINES)]
    writer.write(line + b"Content-Length: 2\r\n\r\nok")
    await writer.drain()
    return False


async def bad_header(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    header = _BAD_HEADERS[next(server.variant["bad_header"]) % len(_BAD_HEADERS)]
    writer.write(b"HTTP/1.1 200 OK\r\n" + header + b"Connection: close\r\n\r\nok")
    await writer.drain()
    return False


async def bad_chunk(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """A chunked body whose second chunk size is not hex, sent once the body is being read."""
    writer.write(response_head("200 OK", {"Transfer-Encoding": "chunked"}) + b"5\r\nhello\r\n")
    await writer.drain()
    await asyncio.sleep(RESET_PAUSE_S)
    writer.write(b"zz\r\nxx\r\n0\r\n\r\n")
    await writer.drain()
    return False


async def drip(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    writer.write(response_head("200 OK", {"Content-Length": str(DRIP_BYTES)}))
    for _ in range(DRIP_BYTES):
        await writer.drain()
        await asyncio.sleep(DRIP_EVERY_S)
        writer.write(b"d")
    await writer.drain()
    return True


async def huge(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    writer.write(response_head("200 OK", {"Content-Length": str(HUGE_BYTES)}))
    for _ in range(HUGE_BYTES // CHUNK):
        writer.write(_FILLER)  # the same 64 KiB object every time: nothing accumulates
        await writer.drain()
    return True


async def endless(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    writer.write(response_head("200 OK", {"Transfer-Encoding": "chunked"}))
    chunk = f"{CHUNK:x}\r\n".encode() + _FILLER + b"\r\n"
    ends = time.monotonic() + ENDLESS_CAP_S
    while time.monotonic() < ends:
        writer.write(chunk)
        await writer.drain()
    return False  # never a last chunk: the body is cut, not finished


async def unavailable(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    head = response_head("503 Service Unavailable", {"Content-Length": "11", "Retry-After": "1"})
    writer.write(head + b"unavailable")
    await writer.drain()
    return True


async def close_announced(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """Answer with ``Connection: close``, then close: no keep-alive, ever."""
    writer.write(response_head("200 OK", {"Content-Length": "2", "Connection": "close"}) + b"ok")
    await writer.drain()
    return False


async def close_silent(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """Answer as if keep-alive, then close anyway: the client's pooled connection is dead."""
    writer.write(response_head("200 OK", {"Content-Length": "2"}) + b"ok")
    await writer.drain()
    return False


# -- HTTP/1.1 framing every client must get right (not faults: correct, if unusual) ---------

FRAMED_BYTES = 1000  # the body of /head-length and /close-delimited


async def head_length(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """A HEAD answer announcing a body it does not send, as RFC 9110 has it; keep-alive."""
    writer.write(response_head("200 OK", {"Content-Length": str(FRAMED_BYTES)}))
    await writer.drain()
    return True


async def continue_first(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """An informational 100 Continue, then the final answer on the same connection."""
    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    writer.write(response_head("200 OK", {"Content-Length": "2"}) + b"ok")
    await writer.drain()
    return True


async def close_delimited(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """No Content-Length, not chunked: the body ends where the connection does."""
    writer.write(response_head("200 OK", {"Content-Type": "text/plain"}))
    writer.write(b"x" * FRAMED_BYTES)
    await writer.drain()
    return False


async def no_content(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    writer.write(response_head("204 No Content"))
    await writer.drain()
    return True


ENDLESS_HEADER_BYTES = 8 * 1024 * 1024  # bounded all the same


async def endless_header(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """A header value that goes on and on (up to 8 MB): the client must give up, bounded."""
    writer.write(b"HTTP/1.1 200 OK\r\nX-Endless: ")
    for _ in range(ENDLESS_HEADER_BYTES // CHUNK):
        writer.write(_FILLER)
        await writer.drain()
    return False


async def hostile_text(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """A 500 whose reason phrase, headers and body carry terminal escapes and Rich markup."""
    body = b"\x1b[31m[bold red]pwned[/]\x1b]0;pwned\x07"
    writer.write(
        b"HTTP/1.1 500 \x1b[2J[bold]boom[/]\x07\r\nX-Evil: [red]x[/]\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    await writer.drain()
    return True


# -- answers that are not answers (issue 25 §5): only an answer to the request is counted ---

STRAY_AFTER_S = 0.05  # an unasked answer this long after the real one (the client is idle)
BIG_HEADER_BYTES = 16 * 1024  # one header value this long: valid, and nginx's default is 8k


def _answer(status: str, body: bytes) -> bytes:
    return response_head(status, {"Content-Length": str(len(body))}) + body


async def stray_in_same_write(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """A 500 and, in the same write, a 200 nobody asked for."""
    writer.write(_answer("500 Internal Server Error", b"no") + _answer("200 OK", b"ok"))
    await writer.drain()
    return True


async def stray_later(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """A 200, then STRAY_AFTER_S later a 500 nobody asked for, on the idle connection."""
    writer.write(_answer("200 OK", b"ok"))
    await writer.drain()
    await asyncio.sleep(STRAY_AFTER_S)
    writer.write(_answer("500 Internal Server Error", b"no"))
    await writer.drain()
    return True


async def head_then_body(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """The answer to HEAD, then STRAY_AFTER_S later the body a HEAD answer never has."""
    writer.write(response_head("200 OK", {"Content-Length": str(FRAMED_BYTES)}))
    await writer.drain()
    await asyncio.sleep(STRAY_AFTER_S)
    writer.write(b"x" * FRAMED_BYTES)
    await writer.drain()
    return True


async def status_000(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    writer.write(b"HTTP/1.1 000 Nothing\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()
    return True


async def endless_continue(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """100 Continue after 100 Continue, never a final answer (bounded by ENDLESS_CAP_S)."""
    burst = b"HTTP/1.1 100 Continue\r\n\r\n" * 2048
    ends = time.monotonic() + ENDLESS_CAP_S
    while time.monotonic() < ends:
        writer.write(burst)
        await writer.drain()
    return False


async def header_escape(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """A header value holding an ESC: a control character RFC 9110 does not allow."""
    writer.write(b"HTTP/1.1 200 OK\r\nX-Esc: a\x1b[31mb\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()
    return True


async def switching(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """101 Switching Protocols to a request that asked for no upgrade."""
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
    await writer.drain()
    return False


async def big_header(server: FaultServer, reader: Reader, writer: Writer) -> bool:
    """A valid answer with one header of BIG_HEADER_BYTES."""
    head = response_head("200 OK", {"X-Big": "a" * BIG_HEADER_BYTES, "Content-Length": "2"})
    writer.write(head + b"ok")
    await writer.drain()
    return True


FAULTS: dict[str, Handler] = {
    "/ok": ok,
    "/hang": hang,
    "/late": late,
    "/slow": slow,
    "/reset-headers": reset_headers,
    "/reset-body": reset_body,
    "/bad-status": bad_status,
    "/bad-header": bad_header,
    "/bad-chunk": bad_chunk,
    "/drip": drip,
    "/huge": huge,
    "/endless": endless,
    "/503": unavailable,
    "/close": close_announced,
    "/close-silent": close_silent,
    "/hostile": hostile_text,
    "/head-length": head_length,
    "/continue": continue_first,
    "/close-delimited": close_delimited,
    "/no-content": no_content,
    "/endless-header": endless_header,
    "/stray-same-write": stray_in_same_write,
    "/stray-later": stray_later,
    "/head-then-body": head_then_body,
    "/status-000": status_000,
    "/endless-continue": endless_continue,
    "/header-escape": header_escape,
    "/switching": switching,
    "/big-header": big_header,
}


class FaultServer:
    """The fault target on 127.0.0.1, port 0, served from a daemon thread with its own loop."""

    def __init__(self) -> None:
        self.url = ""
        self.connections = 0
        self.requests: Counter[str] = Counter()
        # Which malformed line to send next, so a run sees every variant in turn.
        self.variant = {"bad_status": itertools.count(), "bad_header": itertools.count()}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: weakref.WeakSet[Writer] = weakref.WeakSet()
        self._readers: set[Reader] = set()  # of the connections open now (see unread())
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._main, name="fault-server", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> FaultServer:
        self._thread.start()
        assert self._ready.wait(5), "fault server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        # A backlog well above the users a test runs: a full queue would look like a refusal.
        # asyncio.start_server, but each connection's reader is known from the moment the
        # connection is accepted, before its task starts: unread() must see its bytes.
        self._server = self._loop.run_until_complete(
            self._loop.create_server(self._protocol, "127.0.0.1", 0, backlog=512)
        )
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in list(self._writers):  # a graceful close may still be flushing a body
            writer.transport.abort()

    # -- counting ----------------------------------------------------------------------

    def seen(self, path: str) -> int:
        """Requests received on ``path`` so far (read from any thread)."""
        return self.requests[path]

    def unread(self) -> int:
        """Bytes sent to this server that it has not read yet (call it from any thread).

        In the kernel: a connection's receive queue, or connections still waiting to be
        accepted; then in an open connection's stream buffer. Measured on the server's own
        loop, where requests are counted: at 0, every request that reached the server is in
        ``seen``. A connection the server has closed is not waited for: it reads no more.
        """
        return asyncio.run_coroutine_threadsafe(self._unread(), self._loop).result(5)

    async def _unread(self) -> int:
        port = self.url.rsplit(":", 1)[1]
        in_kernel = 0
        # Linux: tx_queue:rx_queue per socket; a listening socket's rx_queue is its accept
        # queue. Only sockets this server still reads: listening, established, peer closed.
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local_port, state = int(fields[1].split(":")[1], 16), fields[3]
            if local_port == int(port) and state in ("01", "08", "0A"):
                in_kernel += int(fields[4].split(":")[1], 16)
        # StreamReader has no public view of its buffer.
        return in_kernel + sum(len(reader._buffer) for reader in self._readers)

    # -- serving -----------------------------------------------------------------------

    def _protocol(self) -> asyncio.StreamReaderProtocol:
        reader = asyncio.StreamReader(loop=self._loop)
        self._readers.add(reader)
        return asyncio.StreamReaderProtocol(reader, self._accept, loop=self._loop)

    async def _accept(self, reader: Reader, writer: Writer) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            # One request after another on a keep-alive connection; every fault but the
            # well-behaved ones ends the connection, so this runs a bounded number of times.
            while True:
                path = await self._read_request(reader)
                if path is None:
                    return
                self.requests[path] += 1
                handler = FAULTS.get(path)
                if handler is None:
                    writer.write(response_head("404 Not Found", {"Content-Length": "0"}))
                    await writer.drain()
                    continue
                if not await handler(self, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return  # the client went away: that is its right
        except asyncio.CancelledError:
            # Only shutdown cancels; ending quietly spares Python 3.11's streams callback
            # from logging a traceback for a cancelled connection task.
            return
        finally:
            self._tasks.discard(task)
            self._readers.discard(reader)
            if not writer.transport.is_closing():
                writer.close()  # after what was written is flushed; a reset already aborted

    @staticmethod
    async def _read_request(reader: Reader) -> str | None:
        """The path of the next request (its body read and dropped); None at end of stream."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                length = int(value.strip())
        if length:
            await reader.readexactly(length)  # test request bodies are a few bytes
        return path


def refused_url() -> str:
    """A loopback URL where nothing listens: bind a port, then close it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"
