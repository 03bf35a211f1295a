"""The embedded demo target, over real HTTP on 127.0.0.1, and the shipped demo profiles."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from conftest import LOOPBACK_URL
from waiting import eventually

from stressdeck.observe.demo import DemoServerThread, make_app, serve_forever, start_demo_server
from stressdeck.profiles.profile import load_profile

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted((ROOT / "profiles").glob("demo-*.toml"))
EMBEDDED = ROOT / "src" / "stressdeck" / "profiles" / "demo.toml"


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    runner, url = await start_demo_server("127.0.0.1", 0, app=make_app(seed=1))
    try:
        yield url
    finally:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text exposition -> {(name, labels): value}; fails on any malformed line."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"malformed metrics line: {line!r}"
        name, labels, value = match.groups()
        pairs = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or ""))
        samples[(name, pairs)] = float(value)
    return samples


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def test_start_demo_server_binds_loopback_free_port(base_url: str) -> None:
    assert re.fullmatch(LOOPBACK_URL, base_url)
    assert int(base_url.rsplit(":", 1)[1]) > 0


async def test_health(base_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{base_url}/health") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok"}


async def test_items_seeded_and_listing_capped(base_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{base_url}/items") as resp:
        body = await resp.json()
    assert resp.status == 200
    assert body["total"] == 100 and len(body["items"]) == 50
    async with http.get(f"{base_url}/items", params={"limit": "10"}) as resp:
        assert len((await resp.json())["items"]) == 10
    async with http.get(f"{base_url}/items/100") as resp:
        assert resp.status == 200 and (await resp.json())["id"] == 100


async def test_post_then_get(base_url: str, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{base_url}/items", json={"name": "widget", "price": 3}) as resp:
        assert resp.status == 201
        created = await resp.json()
    assert created["name"] == "widget" and created["price"] == 3
    assert created["id"] == 101  # after the 100 seeded items
    async with http.get(f"{base_url}/items/{created['id']}") as resp:
        assert resp.status == 200
        assert await resp.json() == created


async def test_post_rejects_invalid_json(base_url: str, http: aiohttp.ClientSession) -> None:
    for data in (b"{not json", b"", b"[1, 2]"):
        async with http.post(f"{base_url}/items", data=data) as resp:
            assert resp.status == 400
            assert "error" in await resp.json()


async def test_get_missing_is_404(base_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{base_url}/items/999999") as resp:
        assert resp.status == 404
        assert "error" in await resp.json()


async def test_put_upserts(base_url: str, http: aiohttp.ClientSession) -> None:
    async with http.put(f"{base_url}/items/5", json={"name": "renamed"}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"id": 5, "name": "renamed"}
    async with http.put(f"{base_url}/items/5000", json={"name": "new"}) as resp:
        assert resp.status == 200
    async with http.get(f"{base_url}/items/5000") as resp:
        assert resp.status == 200 and (await resp.json())["name"] == "new"
    # A later POST must not collide with the upserted id.
    async with http.post(f"{base_url}/items", json={"name": "next"}) as resp:
        assert (await resp.json())["id"] == 5001
    async with http.put(f"{base_url}/items/5", data=b"nope") as resp:
        assert resp.status == 400


async def test_delete_is_idempotent(base_url: str, http: aiohttp.ClientSession) -> None:
    for _ in range(2):
        async with http.delete(f"{base_url}/items/3") as resp:
            assert resp.status == 204
    async with http.get(f"{base_url}/items/3") as resp:
        assert resp.status == 404


async def test_store_is_capped_dropping_oldest() -> None:
    runner, url = await start_demo_server(app=make_app(max_items=105))
    try:
        async with aiohttp.ClientSession() as http:
            for index in range(10):
                async with http.post(f"{url}/items", json={"n": index}) as resp:
                    assert resp.status == 201
            async with http.get(f"{url}/items") as resp:
                assert (await resp.json())["total"] == 105
            async with http.get(f"{url}/items/1") as resp:
                assert resp.status == 404
            async with http.get(f"{url}/items/110") as resp:
                assert resp.status == 200
    finally:
        await runner.cleanup()


async def test_flaky_extremes(base_url: str, http: aiohttp.ClientSession) -> None:
    for _ in range(20):
        async with http.get(f"{base_url}/flaky", params={"fail": "0"}) as resp:
            assert resp.status == 200
        async with http.get(f"{base_url}/flaky", params={"fail": "1"}) as resp:
            assert resp.status == 500
    async with http.get(f"{base_url}/flaky", params={"fail": "abc"}) as resp:
        assert resp.status == 400


async def test_slow_sleeps(base_url: str, http: aiohttp.ClientSession) -> None:
    started = time.perf_counter()
    async with http.get(f"{base_url}/slow", params={"ms": "100"}) as resp:
        assert resp.status == 200
        await resp.json()
    assert time.perf_counter() - started >= 0.1
    started = time.perf_counter()
    async with http.get(f"{base_url}/slow", params={"ms": "-50"}) as resp:  # clamped to 0
        assert resp.status == 200
    assert time.perf_counter() - started < 0.1


async def test_stream_sends_spaced_events(base_url: str, http: aiohttp.ClientSession) -> None:
    started = time.perf_counter()
    events: list[tuple[float, str]] = []
    async with http.get(f"{base_url}/stream", params={"tokens": "8", "interval_ms": "50"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        async for raw in resp.content:
            line = raw.decode().strip()
            if line:
                events.append((time.perf_counter() - started, line))
    data = [text for _, text in events]
    assert data == [f"data: token-{i}" for i in range(8)] + ["data: [DONE]"]
    first, last = events[0][0], events[-1][0]
    assert last - first >= 0.3  # 7 gaps of 50 ms
    assert first < last / 2  # the first event is not buffered until the end
    gaps = [b[0] - a[0] for a, b in zip(events, events[1:-1], strict=False)]
    assert sum(gap > 0.02 for gap in gaps) >= 5


async def test_metrics_reflect_requests(base_url: str, http: aiohttp.ClientSession) -> None:
    for _ in range(3):
        async with http.get(f"{base_url}/health") as resp:
            assert resp.status == 200
    for _ in range(2):
        async with http.get(f"{base_url}/flaky", params={"fail": "1"}) as resp:
            assert resp.status == 500
    for item_id in (1, 2, 999999):
        async with http.get(f"{base_url}/items/{item_id}"):
            pass
    async with http.get(f"{base_url}/nowhere") as resp:
        assert resp.status == 404
    async with http.post(f"{base_url}/items", json={"name": "x"}):
        pass

    async with http.get(f"{base_url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        samples = parse_metrics(await resp.text())

    total = "demo_requests_total"
    assert sample(samples, total, route="/health", status="200") == 3
    assert sample(samples, total, route="/flaky", status="500") == 2
    assert sample(samples, total, route="/items/{id}", status="200") == 2
    assert sample(samples, total, route="/items/{id}", status="404") == 1
    assert sample(samples, total, route="/items", status="201") == 1
    assert (
        sum(
            v
            for (name, labels), v in samples.items()
            if name == total and ("route", "/nowhere") in labels
        )
        == 0
    )  # raw paths never leak
    assert not any(("route", "/metrics") in labels for _, labels in samples)
    assert sample(samples, "demo_items") == 101
    assert sample(samples, "demo_in_flight") == 0
    assert sample(samples, "process_resident_memory_bytes") > 1_000_000

    histogram = "demo_request_duration_seconds"
    routes = {dict(labels)["route"] for name, labels in samples if name == f"{histogram}_count"}
    assert {"/health", "/flaky", "/items/{id}", "/items"} <= routes
    for route in routes:
        buckets = sorted(
            (
                (float(dict(labels)["le"]), value)
                for (name, labels), value in samples.items()
                if name == "demo_request_duration_seconds_bucket" and dict(labels)["route"] == route
            ),
        )
        counts = [value for _, value in buckets]
        assert buckets[-1][0] == float("inf")
        assert counts == sorted(counts), f"buckets not cumulative for {route}"
        count = sample(samples, "demo_request_duration_seconds_count", route=route)
        assert counts[-1] == count
        assert sample(samples, "demo_request_duration_seconds_sum", route=route) >= 0
    assert sample(samples, "demo_request_duration_seconds_count", route="/health") == 3
    requests_per_route = sum(
        v
        for (name, labels), v in samples.items()
        if name == total and dict(labels)["route"] == "/items/{id}"
    )
    assert sample(samples, f"{histogram}_count", route="/items/{id}") == requests_per_route


async def test_metrics_track_in_flight_requests(base_url: str, http: aiohttp.ClientSession) -> None:
    pending = asyncio.ensure_future(http.get(f"{base_url}/slow", params={"ms": "500"}))

    async def in_flight() -> float:
        async with http.get(f"{base_url}/metrics") as resp:
            return sample(parse_metrics(await resp.text()), "demo_in_flight")

    async def slow_one_in_flight() -> bool:
        assert not pending.done(), "the slow request ended before /metrics counted it in flight"
        return await in_flight() == 1

    await eventually(slow_one_in_flight, what="the slow request is in flight")
    (await pending).release()
    async with http.get(f"{base_url}/metrics") as resp:
        samples = parse_metrics(await resp.text())
    assert sample(samples, "demo_in_flight") == 0
    assert sample(samples, "demo_request_duration_seconds_bucket", route="/slow", le="0.25") == 0
    assert sample(samples, "demo_request_duration_seconds_bucket", route="/slow", le="1") == 1


def test_demo_server_thread_starts_and_stops() -> None:
    with DemoServerThread(seed=3) as server:
        url = server.url
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
            assert resp.status == 200
        thread = server._thread
        assert thread is not None and thread.is_alive()
        started = time.perf_counter()
    assert time.perf_counter() - started < 2.5
    assert not thread.is_alive()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/health", timeout=2)
    with pytest.raises(RuntimeError):
        _ = server.url


def test_demo_server_thread_stops_with_a_stream_open() -> None:
    server = DemoServerThread().start()
    request = urllib.request.urlopen(f"{server.url}/stream?tokens=1000&interval_ms=100", timeout=5)
    try:
        assert request.readline().startswith(b"data: token-0")
        started = time.perf_counter()
        server.stop()
        assert time.perf_counter() - started < 2.5
        assert server._thread is not None and not server._thread.is_alive()
    finally:
        request.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::", ""])
def test_non_loopback_hosts_are_refused(host: str) -> None:
    printed: list[str] = []
    with pytest.raises(ValueError):
        serve_forever(0, host, print_url=printed.append)
    assert printed == []
    with pytest.raises(ValueError):
        DemoServerThread(host)


async def test_start_demo_server_refuses_non_loopback() -> None:
    with pytest.raises(ValueError):
        await start_demo_server("0.0.0.0", 0)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_serve_forever_prints_url_and_exits_cleanly_on_sigint() -> None:
    code = "from stressdeck.observe.demo import serve_forever; serve_forever(0)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "0"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = re.fullmatch(f"demo target listening on ({LOOPBACK_URL})", line)
        assert match, line
        with urllib.request.urlopen(f"{match.group(1)}/health", timeout=5) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "Traceback" not in err and err == ""
    assert out == ""


# --- the shipped profiles -------------------------------------------------------------------

TOP_KEYS = {
    "name",
    "description",
    "base_url",
    "thresholds",
    "defaults",
    "load",
    "endpoints",
    "flow",
    "metrics_url",
    "metrics",
}
DEFAULT_KEYS = {"timeout", "headers"}
LOAD_KEYS = {"model", "users", "duration", "requests"}
ENDPOINT_KEYS = {
    "extract",
    "name",
    "method",
    "path",
    "url",
    "headers",
    "query",
    "json",
    "body",
    "weight",
    "expect",
    "think",
}


def test_profiles_exist_and_embedded_copy_matches() -> None:
    assert [p.name for p in PROFILES] == [
        "demo-flow.toml",
        "demo-health.toml",
        "demo-mix.toml",
        "demo-stream.toml",
    ]
    assert EMBEDDED.read_bytes() == (ROOT / "profiles" / "demo-mix.toml").read_bytes()


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_profiles_use_only_the_documented_schema(path: Path) -> None:
    doc = tomllib.loads(path.read_text("utf-8"))
    assert set(doc) <= TOP_KEYS and doc["name"] and doc["base_url"] == "http://127.0.0.1:8765"
    assert all(isinstance(t, str) for t in doc["thresholds"])
    assert set(doc["defaults"]) <= DEFAULT_KEYS and set(doc["load"]) <= LOAD_KEYS
    names = [e["name"] for e in doc["endpoints"]]
    assert len(names) == len(set(names))
    for endpoint in doc["endpoints"]:
        assert set(endpoint) <= ENDPOINT_KEYS
        assert not ("json" in endpoint and "body" in endpoint)


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_profiles_parse_with_the_profile_loader(path: Path) -> None:
    profile = load_profile(path)
    assert profile.endpoints and profile.thresholds


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
async def test_every_profile_endpoint_gets_an_expected_status(
    path: Path, base_url: str, http: aiohttp.ClientSession
) -> None:
    doc = tomllib.loads(path.read_text("utf-8"))
    headers = doc["defaults"].get("headers", {})
    for endpoint in doc["endpoints"]:
        if endpoint["path"] == "/flaky":
            continue  # fails on purpose, ~20% of the time
        if "{" in endpoint["path"]:
            continue  # chained: needs an id from an earlier step (test_chain runs the flow)
        async with http.request(
            endpoint.get("method", "GET"),
            base_url + endpoint["path"],
            params=endpoint.get("query"),
            json=endpoint.get("json"),
            headers={**headers, **endpoint.get("headers", {})},
        ) as resp:
            await resp.read()
            assert resp.status in endpoint["expect"], endpoint["name"]
