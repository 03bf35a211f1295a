"""Embedded demo target: a small aiohttp app to point stressdeck at without a real backend.

Routes: /health, in-memory /items CRUD, /slow, /flaky, /stream (SSE-style chunks) and a
hand-written Prometheus /metrics. It only ever binds loopback addresses.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import psutil
from aiohttp import web

from stressdeck.core.hosts import is_loopback

MAX_ITEMS = 10_000
SEED_ITEMS = 100
LIST_LIMIT = 50
# Prometheus' default buckets plus 30 s, so /slow at its clamp still lands in a finite bucket.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SHUTDOWN_TIMEOUT = 0.5  # grace for in-flight requests (e.g. streams) before they are cancelled

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _State:
    rng: random.Random
    max_items: int
    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 1
    in_flight: int = 0
    requests: dict[tuple[str, int], int] = field(default_factory=dict)
    # route -> [count per bucket, with a last slot for +Inf]; route -> total seconds
    buckets: dict[str, list[int]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    process: psutil.Process = field(default_factory=psutil.Process)

    def store(self, item_id: int, item: dict[str, Any]) -> None:
        # Re-insert so an upsert counts as the newest write and is evicted last.
        self.items.pop(item_id, None)
        self.items[item_id] = item
        self.next_id = max(self.next_id, item_id + 1)
        while len(self.items) > self.max_items:
            del self.items[next(iter(self.items))]

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] = self.requests.get((route, status), 0) + 1
        self.buckets.setdefault(route, [0] * (len(BUCKETS) + 1))[bisect_left(BUCKETS, seconds)] += 1
        self.seconds[route] = self.seconds.get(route, 0.0) + seconds


STATE = web.AppKey("stressdeck_demo_state", _State)


@web.middleware
async def _metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # The canonical path ("/items/{id}") keeps label cardinality bounded, unlike the raw path.
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "(unmatched)"
    if route == "/metrics":
        return await handler(request)
    state = request.app[STATE]
    state.in_flight += 1
    started, status = time.perf_counter(), 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # nginx's code for "client went away"; here also "server shut down"
        raise
    finally:
        state.in_flight -= 1
        state.observe(route, status, time.perf_counter() - started)


def _error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json")


def _number(request: web.Request, name: str, default: float, low: float, high: float) -> float:
    """Query parameter ``name`` as a float clamped to [low, high]; 400 if not a number."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _error(web.HTTPBadRequest, f"{name} must be a number") from None
    return default if value != value else min(max(value, low), high)  # NaN survives min/max


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError):  # also covers bad UTF-8 and an empty body
        raise _error(web.HTTPBadRequest, "body must be valid JSON") from None
    if not isinstance(body, dict):
        raise _error(web.HTTPBadRequest, "body must be a JSON object")
    return body


def _item(item_id: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"id": item_id, **{k: v for k, v in body.items() if k != "id"}}


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def list_items(request: web.Request) -> web.Response:
    state = request.app[STATE]
    limit = int(_number(request, "limit", LIST_LIMIT, 0, LIST_LIMIT))
    items = list(islice(state.items.values(), limit))
    return web.json_response({"items": items, "count": len(items), "total": len(state.items)})


async def create_item(request: web.Request) -> web.Response:
    body, state = await _json_object(request), request.app[STATE]
    item = _item(state.next_id, body)
    state.store(item["id"], item)
    return web.json_response(item, status=201)


async def get_item(request: web.Request) -> web.Response:
    item = request.app[STATE].items.get(int(request.match_info["id"]))
    if item is None:
        raise _error(web.HTTPNotFound, "no such item")
    return web.json_response(item)


async def put_item(request: web.Request) -> web.Response:
    item = _item(int(request.match_info["id"]), await _json_object(request))
    request.app[STATE].store(item["id"], item)
    return web.json_response(item)


async def delete_item(request: web.Request) -> web.Response:
    # Always 204, so a load mix can delete fixed ids without chaining requests.
    request.app[STATE].items.pop(int(request.match_info["id"]), None)
    return web.Response(status=204)


async def slow(request: web.Request) -> web.Response:
    ms = _number(request, "ms", 200, 0, 30_000)
    await asyncio.sleep(ms / 1000)
    return web.json_response({"slept_ms": ms})


async def flaky(request: web.Request) -> web.Response:
    if request.app[STATE].rng.random() < _number(request, "fail", 0.2, 0.0, 1.0):
        raise _error(web.HTTPInternalServerError, "flaky failure")
    return web.json_response({"status": "ok"})


async def stream(request: web.Request) -> web.StreamResponse:
    tokens = int(_number(request, "tokens", 20, 1, 1000))
    interval = _number(request, "interval_ms", 50, 0, 5000) / 1000
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        for index in range(tokens):
            if index:
                await asyncio.sleep(interval)
            await response.write(f"data: token-{index}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client hung up mid-stream; there is no one left to answer
    return response


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    lines = [
        "# HELP demo_requests_total Requests handled, by route and status.",
        "# TYPE demo_requests_total counter",
    ]
    for (route, status), count in sorted(state.requests.items()):
        lines.append(f"demo_requests_total{_labels(route=route, status=str(status))} {count}")
    histogram = "demo_request_duration_seconds"
    lines += [f"# HELP {histogram} Request duration, by route.", f"# TYPE {histogram} histogram"]
    for route, counts in sorted(state.buckets.items()):
        cumulative = 0
        for bound, count in zip([*(f"{b:g}" for b in BUCKETS), "+Inf"], counts, strict=False):
            cumulative += count
            lines.append(f"{histogram}_bucket{_labels(route=route, le=bound)} {cumulative}")
        lines.append(f"{histogram}_sum{_labels(route=route)} {state.seconds[route]:.6f}")
        lines.append(f"{histogram}_count{_labels(route=route)} {cumulative}")
    for name, help_text, value in (
        ("demo_items", "Items in the in-memory store.", len(state.items)),
        ("demo_in_flight", "Requests being handled now (excluding /metrics).", state.in_flight),
        ("process_resident_memory_bytes", "Resident set size.", state.process.memory_info().rss),
    ):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
    text = "\n".join(lines) + "\n"
    content_type = "text/plain; version=0.0.4; charset=utf-8"  # the Prometheus text format
    return web.Response(body=text.encode(), headers={"Content-Type": content_type})


def make_app(*, seed: int | None = None, max_items: int = MAX_ITEMS) -> web.Application:
    """Build the demo app with items 1..100 seeded; ``seed`` makes /flaky reproducible."""
    app = web.Application(middlewares=[_metrics_middleware])
    app[STATE] = state = _State(rng=random.Random(seed), max_items=max_items)
    for item_id in range(1, SEED_ITEMS + 1):
        state.store(item_id, {"id": item_id, "name": f"item-{item_id}", "price": item_id % 17 + 1})
    item = r"/items/{id:\d+}"
    app.add_routes(
        [
            web.get("/health", health),
            web.get("/metrics", metrics),
            web.get("/items", list_items),
            web.post("/items", create_item),
            web.get(item, get_item),
            web.put(item, put_item),
            web.delete(item, delete_item),
            web.get("/slow", slow),
            web.get("/flaky", flaky),
            web.get("/stream", stream),
        ]
    )
    return app


def check_loopback(host: str) -> None:
    """Raise ValueError unless ``host`` is a loopback address: the demo is never exposed."""
    if not is_loopback(host):
        raise ValueError(f"the demo target only binds loopback addresses, not {host!r}")


async def start_demo_server(
    host: str = "127.0.0.1", port: int = 0, *, app: web.Application | None = None
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` (default: a fresh make_app()) on host:port, 0 = a free port.

    Returns the runner (call ``await runner.cleanup()`` to stop) and the base URL.
    """
    check_loopback(host)
    runner = web.AppRunner(
        app if app is not None else make_app(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]  # the real port when 0 was asked for
    return runner, f"http://{f'[{bound_host}]' if ':' in bound_host else bound_host}:{bound_port}"


def serve_forever(
    port: int = 0, host: str = "127.0.0.1", *, print_url: Callable[[str], Any] = print
) -> None:
    """Serve until SIGINT/SIGTERM, announcing the URL once, and shut down without a traceback."""
    check_loopback(host)

    async def main() -> None:
        runner, url = await start_demo_server(host, port)
        stop, loop = asyncio.Event(), asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # Windows or not the main thread: Ctrl+C arrives as KeyboardInterrupt instead
        try:
            print_url(f"demo target listening on {url}")
            sys.stdout.flush()
            await stop.wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


class DemoServerThread:
    """Run the demo app on its own event loop in a daemon thread (for tests and the console)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: int | None = None) -> None:
        check_loopback(host)
        self._host, self._port, self._seed = host, port, seed
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the demo server is not running")
        return self._url

    def start(self, timeout: float = 5.0) -> DemoServerThread:
        """Start the thread and wait until the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the demo server was already started")
        self._thread = threading.Thread(target=self._run, name="stressdeck-demo", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the demo server did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Shut down (in-flight requests get SHUTDOWN_TIMEOUT, then are cancelled) and join."""
        self._url = None
        if self._loop is not None and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass  # the loop has already closed: nothing left to stop
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        app = make_app(seed=self._seed)
        try:
            runner, self._url = await start_demo_server(self._host, self._port, app=app)
        except BaseException as exc:  # re-raised by start() in the calling thread
            self._error = exc
            return
        finally:
            self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def __enter__(self) -> DemoServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
