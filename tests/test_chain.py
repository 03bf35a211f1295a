"""Chaining, flows, data feeds and streaming, against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import ServerThread
from test_engine import assert_counted_once

from stressdeck.core.errors import InputError
from stressdeck.engine import build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.observe.demo import DemoServerThread
from stressdeck.profiles.chain import parse_extractor
from stressdeck.profiles.profile import load_profile, parse_profile

ROOT = Path(__file__).parent.parent


def flow_app(log: dict[str, list[str]], *, give_id: bool = True) -> web.Application:
    app = web.Application()

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        thing_id = str(uuid.uuid4())
        log["created"].append(thing_id)
        log["names"].append(body["name"])
        return web.json_response(
            {"data": {"items": [{"id": thing_id}]}} if give_id else {},
            status=201,
            headers={"X-Session": "s-" + thing_id[:8]},
        )

    async def fetch(request: web.Request) -> web.Response:
        log["fetched"].append(request.match_info["id"])
        log["sessions"].append(request.headers.get("X-Session", ""))
        known = request.match_info["id"] in log["created"]
        return web.json_response({"ok": known}, status=200 if known else 404)

    async def signup(request: web.Request) -> web.Response:
        log["emails"].append((await request.json())["email"])
        return web.json_response({}, status=201)

    async def tokens(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(10):
            await response.write(f"data: token-{i}\n\n".encode())
            await asyncio.sleep(0.05)
        await response.write_eof()
        return response

    app.router.add_post("/things", create)
    app.router.add_get("/things/{id}", fetch)
    app.router.add_post("/signup", signup)
    app.router.add_get("/tokens", tokens)
    return app


def _plan(
    base_url: str, document: dict[str, Any], path: str = "chain.toml", **overrides: Any
) -> Any:
    return build_plan(
        parse_profile({"name": "chain", "base_url": base_url, **document}, path),
        Overrides(**overrides),
    )


CREATE_THEN_FETCH = {
    "flow": ["create", "fetch"],
    "endpoints": [
        {
            "name": "create",
            "method": "POST",
            "path": "/things",
            "json": {"name": "n-{random.hex}"},
            "expect": [201],
            "extract": {"id": "$.data.items[0].id", "session": "header:X-Session"},
        },
        {
            "name": "fetch",
            "path": "/things/{id}",
            "headers": {"X-Session": "{session}"},
            "expect": [200],
        },
    ],
    "load": {"users": 4, "requests": 200},
}


async def test_every_fetch_uses_the_id_its_create_returned(client: str) -> None:
    log: dict[str, list[str]] = {
        "created": [],
        "fetched": [],
        "names": [],
        "sessions": [],
        "emails": [],
    }
    with ServerThread(flow_app(log)) as server:
        final = await (await start(_plan(server.url, CREATE_THEN_FETCH, client=client))).wait()
    by_name = {ep.name: ep for ep in final.endpoints}
    assert by_name["create"].requests == by_name["fetch"].requests == 100
    assert by_name["fetch"].status_counts == {200: 100}
    assert set(log["fetched"]) <= set(log["created"]) and len(set(log["fetched"])) == 100
    assert all(
        session == "s-" + fetched[:8]
        for session, fetched in zip(log["sessions"], log["fetched"], strict=False)
    )
    assert len(set(log["names"])) == 100 and all(name.startswith("n-") for name in log["names"])
    assert final.total.skipped == 0
    assert_counted_once(final)


async def test_a_request_budget_over_processes_runs_whole_flows(client: str) -> None:
    """30 requests of a 2-step flow over 4 processes are 15 whole flows, none cut short."""
    log: dict[str, list[str]] = {
        "created": [],
        "fetched": [],
        "names": [],
        "sessions": [],
        "emails": [],
    }
    document = {**CREATE_THEN_FETCH, "load": {"users": 4, "requests": 30}}
    with ServerThread(flow_app(log)) as server:
        final = await (await start(_plan(server.url, document, client=client), processes=4)).wait()
    assert final.stop_reason == "requests done"
    assert [ep.requests for ep in final.endpoints] == [15, 15] and final.total.skipped == 0


async def test_an_open_model_takes_a_data_row_per_arrival(tmp_path: Path, client: str) -> None:
    """``per = "user"`` has no users to hold rows in the open model: each arrival takes one."""
    emails = [f"user{i}@example.test" for i in range(10)]
    (tmp_path / "users.csv").write_text("email\n" + "".join(f"{e}\n" for e in emails))
    log: dict[str, list[str]] = {
        "created": [],
        "fetched": [],
        "names": [],
        "sessions": [],
        "emails": [],
    }
    document = {
        "data": {"file": "users.csv", "mode": "stop", "per": "user"},
        "endpoints": [
            {
                "name": "signup",
                "method": "POST",
                "path": "/signup",
                "json": {"email": "{row.email}"},
                "expect": [201],
            }
        ],
        "load": {"model": "open", "rate": 50, "duration": "5s"},
    }
    with ServerThread(flow_app(log)) as server:
        final = await (
            await start(_plan(server.url, document, str(tmp_path / "chain.toml"), client=client))
        ).wait()
    assert log["emails"] == emails and final.total.skipped == 0
    assert final.stop_reason == "data exhausted"


async def test_a_missing_variable_is_skipped_and_counted_never_sent(client: str) -> None:
    log: dict[str, list[str]] = {
        "created": [],
        "fetched": [],
        "names": [],
        "sessions": [],
        "emails": [],
    }
    with ServerThread(flow_app(log, give_id=False)) as server:
        final = await (await start(_plan(server.url, CREATE_THEN_FETCH, client=client))).wait()
    fetch = next(ep for ep in final.endpoints if ep.name == "fetch")
    assert fetch.requests == 0 and fetch.skipped == 100
    assert fetch.skip_reasons == {"missing {id}": 100}
    assert log["fetched"] == []  # nothing went out with a literal {id}


async def test_a_csv_feed_is_consumed_in_order(tmp_path: Path, client: str) -> None:
    emails = [f"user{i}@example.test" for i in range(25)]
    (tmp_path / "users.csv").write_text(
        "email,name\n" + "".join(f"{e},n{i}\n" for i, e in enumerate(emails))
    )
    log: dict[str, list[str]] = {
        "created": [],
        "fetched": [],
        "names": [],
        "sessions": [],
        "emails": [],
    }
    document = {
        "data": {"file": "users.csv", "mode": "stop"},
        "endpoints": [
            {
                "name": "signup",
                "method": "POST",
                "path": "/signup",
                "json": {"email": "{row.email}", "name": "{row.name}"},
                "expect": [201],
            }
        ],
        "load": {"users": 1, "duration": "10s"},
    }
    with ServerThread(flow_app(log)) as server:
        final = await (
            await start(_plan(server.url, document, str(tmp_path / "chain.toml"), client=client))
        ).wait()
    assert log["emails"] == emails
    assert final.stop_reason == "data exhausted" and final.total.requests == 25


async def test_streaming_reports_first_byte_last_byte_and_events(client: str) -> None:
    log: dict[str, list[str]] = {
        "created": [],
        "fetched": [],
        "names": [],
        "sessions": [],
        "emails": [],
    }
    document = {
        "endpoints": [{"name": "tokens", "path": "/tokens"}],
        "load": {"users": 2, "requests": 6},
    }
    with ServerThread(flow_app(log)) as server:
        final = await (await start(_plan(server.url, document, client=client))).wait()
    tokens = final.endpoints[0]
    assert tokens.requests == 6 and tokens.events == 60 and tokens.chunks >= 60
    assert tokens.ttfb_ms.p50 < 40  # the first token comes at once
    assert 450 <= tokens.service_ms.p50 < 1000  # the last after ten 50 ms gaps


async def test_the_demo_flow_profile_runs_against_the_demo_target(client: str) -> None:
    profile = load_profile(ROOT / "profiles" / "demo-flow.toml")
    with DemoServerThread() as demo:
        final = await (
            await start(
                build_plan(
                    profile,
                    Overrides(base_url=demo.url, requests=40, duration=None, client=client),
                )
            )
        ).wait()
    by_name = {ep.name: ep for ep in final.endpoints}
    assert by_name["create"].status_counts == {201: 10}
    assert by_name["read"].status_counts == {200: 10}
    assert by_name["delete"].status_counts == {204: 10}
    assert by_name["stream"].events >= 100 and final.total.errors == 0


@pytest.mark.parametrize(
    ("expression", "body", "expected"),
    [
        ("$.id", b'{"id": 7}', "7"),
        ("$.data.items[1].id", b'{"data": {"items": [{"id": "a"}, {"id": "b"}]}}', "b"),
        ("$['weird key']", b'{"weird key": true}', "true"),
        ("$.missing", b'{"id": 7}', None),
        ("$.id", b"not json", None),
        ("regex:token=(\\w+)", b"...token=abc123;", "abc123"),
        ("regex:\\d+", b"order 42 done", "42"),
    ],
)
def test_extractors(expression: str, body: bytes, expected: str | None) -> None:
    assert parse_extractor("v", expression).extract({}, body) == expected


def test_header_extractor_reads_headers() -> None:
    assert parse_extractor("v", "header:X-Session").extract({"X-Session": "s1"}, b"") == "s1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"endpoints": [{"name": "a", "path": "/x/{idd}"}]},
            "chain.toml: endpoints[0].path: unknown variable {idd}; expected one that an endpoint extracts",
        ),
        (
            {"endpoints": [{"name": "a", "path": "/x", "extract": {"id": "id"}}]},
            'chain.toml: endpoints[0].extract.id: expected "$.json.path", "header:NAME" or "regex:PATTERN", got "id"',
        ),
        (
            {"flow": ["a", "b"], "endpoints": [{"name": "a", "path": "/x"}]},
            'chain.toml: flow[1]: expected the name of an endpoint, got "b"',
        ),
        (
            {"endpoints": [{"name": "a", "path": "/x", "query": {"e": "{row.email}"}}]},
            'chain.toml: endpoints[0].query.e: {row.email} needs a data file (data = "rows.csv")',
        ),
        (
            {"endpoints": [{"name": "a", "path": "/x/{random.float}"}]},
            "chain.toml: endpoints[0].path: unknown helper {random.float}; expected one of {random.uuid}, {random.int}, "
            "{random.hex}, {random.string}",
        ),
        (
            {"data": "nope.csv", "endpoints": [{"name": "a", "path": "/x"}]},
            "chain.toml: data.file: file not found",
        ),
    ],
)
def test_chaining_mistakes_are_caught_at_load(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_profile({"name": "chain", "base_url": "http://127.0.0.1:1", **change}, "chain.toml")
    assert caught.value.line().startswith(message)


@pytest.mark.parametrize(
    "pieces",
    [
        [b"data: a\n\ndata: b\n\n"],
        [b"data: a\r\n\r\ndata: b\r\n\r\n"],
        [b"data: a\r\rdata: b\r\r"],
        [
            b"data: a\r",
            b"\n\r",
            b"\ndata: b\n",
            b"\n",
        ],  # CRLF and the blank line split across reads
        [b"data: a\n\n\n\n", b"data: b\n\n"],  # extra empty lines are not events
        [b"data: ", b"a" * 100_000, b"\n\n", b"data: b\n\n"],  # a long line is not buffered whole
    ],
)
def test_server_sent_events_are_counted_however_they_are_cut(pieces: list[bytes]) -> None:
    from stressdeck.engine.client import EventCounter

    counter = EventCounter()
    assert sum(counter.feed(piece) for piece in pieces) + counter.finish() == 2
    assert len(counter._partial) <= 2


def test_a_hostile_json_nesting_is_no_value_not_a_crash() -> None:
    assert parse_extractor("v", "$.id").extract({}, b"[" * 200_000) is None
