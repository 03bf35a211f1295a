"""``stressdeck import openapi URL``: the spec fetched from where the API serves it, names that
fit a table, and a fetch that stays on this machine unless the user consents."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import ServerThread

from stressdeck.core.errors import InputError
from stressdeck.engine import build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.profiles.importers import fetch, import_command, profile_from_openapi
from stressdeck.profiles.profile import load_profile

# What FastAPI serves for three routes (no servers list; operationIds made from the function,
# path and method; summaries made from the function name), plus one hand-named operation.
FASTAPI_SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Shop", "version": "0.1.0"},
    "paths": {
        "/items/{item_id}": {
            "get": {
                "summary": "Read Item",
                "operationId": "read_item_items__item_id__get",
                "parameters": [
                    {
                        "name": "item_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "example": 7},
                    }
                ],
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/reports/quarterly/by-region/{region_code}/summary": {
            "get": {
                "operationId": "quarterly_report_reports_quarterly_by_region__region_code__summary_get",
                "parameters": [
                    {
                        "name": "region_code",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "example": "eu"},
                    }
                ],
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "A long summary that says more than a column can hold",
                "responses": {"200": {"description": "ok"}},
            }
        },
    },
}


RECEIVED = web.AppKey("received", Counter)


def shop_app() -> web.Application:
    """Serves its own spec at /openapi.json and counts what each route received."""
    received: Counter[str] = Counter()
    app = web.Application()
    app[RECEIVED] = received

    async def spec(request: web.Request) -> web.Response:
        return web.json_response(FASTAPI_SPEC)

    async def item(request: web.Request) -> web.Response:
        received[f"item {request.match_info['item_id']}"] += 1
        return web.json_response({"id": int(request.match_info["item_id"])})

    async def report(request: web.Request) -> web.Response:
        received[f"report {request.match_info['region']}"] += 1
        return web.json_response({})

    async def health(request: web.Request) -> web.Response:
        received["health"] += 1
        return web.json_response({"ok": True})

    async def elsewhere(request: web.Request) -> web.Response:
        # Never followed: the test checks that the redirect is refused before any lookup.
        raise web.HTTPFound("http://spec.invalid/openapi.json")

    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"openapi": "3.0.0", ')
        for _ in range(200):  # bounded: at most 20 s, far past the test's deadline
            await response.write(b" ")
            await asyncio.sleep(0.1)
        return response

    app.router.add_get("/openapi.json", spec)
    app.router.add_get("/items/{item_id}", item)
    app.router.add_get("/reports/quarterly/by-region/{region}/summary", report)
    app.router.add_get("/health", health)
    app.router.add_get("/moved.json", elsewhere)
    app.router.add_get("/drip.json", drip)
    return app


@pytest.fixture
def shop() -> Iterator[ServerThread]:
    with ServerThread(shop_app()) as server:
        yield server


async def test_import_from_the_url_the_api_serves_and_run_it(
    shop: ServerThread, tmp_path: Path
) -> None:
    path, _ = import_command("openapi", f"{shop.url}/openapi.json", out=str(tmp_path / "shop.toml"))
    profile = load_profile(path)
    # No servers in the spec: the requests go where the spec came from.
    assert profile.base_url == shop.url
    assert profile.name == "Shop"
    assert [ep.name for ep in profile.endpoints] == [
        "Read Item",  # machine-made operationId: the summary
        "GET /reports/quarterly/by-region/{region_code}/summary",  # neither: method and path
        "health",  # a name a person gave it
    ]
    plan = build_plan(profile, Overrides(duration=1.0, users=2))
    final = await (await start(plan)).wait()
    received = shop.app[RECEIVED]
    by_name = {ep.name: ep for ep in final.endpoints}
    # What the server received = what was answered + what was on the wire at the stop.
    sent = {name: ep.requests + ep.cancelled for name, ep in by_name.items()}
    assert sent["Read Item"] == received["item 7"] > 0
    assert sent["GET /reports/quarterly/by-region/{region_code}/summary"] == received["report eu"]
    assert sent["health"] == received["health"]
    assert final.total.errors == 0


def test_a_host_that_is_not_this_machine_needs_consent() -> None:
    with pytest.raises(InputError) as caught:
        profile_from_openapi("http://user:hunter2@spec.invalid/openapi.json")
    message = str(caught.value)
    assert "spec.invalid is not this machine; add --allow-remote" in message
    assert "hunter2" not in message


def test_a_redirect_off_this_machine_is_refused(shop: ServerThread) -> None:
    with pytest.raises(InputError, match="redirected to a host that is not this machine"):
        profile_from_openapi(f"{shop.url}/moved.json")


def test_a_missing_spec_and_a_refused_port_are_one_line(
    shop: ServerThread, refused_url: str
) -> None:
    with pytest.raises(InputError, match="HTTP 404"):
        profile_from_openapi(f"{shop.url}/nothing.json")
    with pytest.raises(InputError, match="cannot fetch the spec"):
        profile_from_openapi(f"{refused_url}/openapi.json")


def test_a_spec_that_never_ends_arriving_is_cut_off(
    shop: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "FETCH_DEADLINE_S", 0.5)
    with pytest.raises(InputError, match="took longer than"):
        profile_from_openapi(f"{shop.url}/drip.json")


def test_the_command_line_names_the_flag(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stressdeck", "import", "openapi", "http://spec.invalid/o.json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1 and "--allow-remote" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())


def test_a_json_spec_file_still_reads_as_before(tmp_path: Path) -> None:
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(FASTAPI_SPEC))
    with pytest.raises(InputError, match="servers: no server URL"):
        profile_from_openapi(path)
    document, _ = profile_from_openapi(path, base_url="http://127.0.0.1:9")
    assert [ep["name"] for ep in document["endpoints"]][0] == "Read Item"
