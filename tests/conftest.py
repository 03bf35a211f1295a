"""Shared fixtures: real HTTP servers on 127.0.0.1, each on its own thread and event loop.

Servers live on their own loop so a test's server can misbehave (even block its loop)
without stalling the engine's runner, which lives on the test's loop.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import faults  # tests/ is on sys.path: the fault server's module
import pytest
from aiohttp import web
from hypothesis import settings

# The property tests of hostile input (test_hostile.py): a few hundred examples each in the
# everyday run, 2,000 in CI's thorough pass (pytest -m fuzz --hypothesis-profile=thorough).
settings.register_profile("default", max_examples=300)
settings.register_profile("thorough", max_examples=2000)
settings.load_profile("default")

COUNTER = web.AppKey("counter", dict)
# What the demo target prints when it is up: always a loopback address on a free port.
LOOPBACK_URL = re.escape("http://127.0.0.1:") + r"\d+"


class ServerThread:
    """An aiohttp.web app served on 127.0.0.1 from a daemon thread."""

    def __init__(self, app: web.Application, ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.ssl_context = ssl_context  # set: served over HTTPS
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=0.1)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        scheme = "https" if self.ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{port}"
        self._runner = runner
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    @property
    def count(self) -> int:
        """Requests the counting app received."""
        return self.app[COUNTER]["count"]

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._ready.wait(5), "test server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@contextmanager
def serve(app: web.Application) -> Iterator[str]:
    with ServerThread(app) as server:
        yield server.url


def counting_app() -> web.Application:
    """/ok, /slow?ms=N, /status/N, /drop (closes the connection mid-response); counts what it got."""
    app = web.Application()
    counter = {"count": 0}

    @web.middleware
    async def count(request: web.Request, handler: Callable) -> web.StreamResponse:
        counter["count"] += 1
        return await handler(request)

    app.middlewares.append(count)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(int(request.query.get("ms", "200")) / 1000)
        return web.Response(text="slow")

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="status")

    async def drop(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b"partial")
        assert request.transport is not None
        request.transport.close()
        return response

    app.router.add_get("/ok", ok)
    app.router.add_post("/ok", ok)
    app.router.add_get("/slow", slow)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/drop", drop)
    app[COUNTER] = counter
    return app


@pytest.fixture
def target() -> Iterator[ServerThread]:
    with ServerThread(counting_app()) as server:
        yield server


# Both HTTP clients pass the same tests: the fast one (httptools) and aiohttp.
CLIENTS = ("fast", "aiohttp")


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    """The HTTP client a test's runs are forced onto (``Overrides(client=...)``)."""
    return str(request.param)


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens."""
    return faults.refused_url()
