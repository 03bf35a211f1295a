"""Users with state: each virtual user logs in once (setup), keeps its own session cookie, and
logs out (teardown); a server that knows every session checks that no user ever sends
another's cookie."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import ServerThread

from stressdeck.core.errors import InputError
from stressdeck.engine import Snapshot, build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.profiles.profile import parse_profile

USERS = 200
SEEN = web.AppKey("seen", Counter)


def session_app(fail_logins: int = 0) -> web.Application:
    """/login?name=N sets a new session cookie for N (the first ``fail_logins`` logins are
    refused); /whoami answers the session's name and checks it is the one the user claims;
    /logout ends the session. ``SEEN`` counts what happened."""
    seen: Counter[str] = Counter()
    sessions: dict[str, str] = {}
    ids = itertools.count(1)
    app = web.Application()
    app[SEEN] = seen

    async def login(request: web.Request) -> web.Response:
        seen["login"] += 1
        if seen["login"] <= fail_logins:
            return web.Response(status=503, text="try again")
        sid = f"s{next(ids)}"
        sessions[sid] = request.query["name"]
        response = web.Response(text="welcome")
        response.set_cookie("sid", sid, path="/", httponly=True)
        response.set_cookie("theme", "dark", path="/prefs")  # not sent to /whoami (path)
        return response

    async def whoami(request: web.Request) -> web.Response:
        sid = request.cookies.get("sid")
        if "theme" in request.cookies:
            seen["cookie sent off its path"] += 1
        if sid is None:
            seen["no cookie"] += 1
            return web.Response(status=401)
        if sessions.get(sid) != request.headers.get("X-Claimed"):
            seen["someone else's cookie"] += 1
            return web.Response(status=409)
        seen["whoami"] += 1
        return web.Response(text=sessions[sid])

    async def logout(request: web.Request) -> web.Response:
        sid = request.cookies.get("sid")
        if sid is not None and sessions.pop(sid, None) is not None:
            seen["logout"] += 1
        response = web.Response(text="bye")
        response.del_cookie("sid", path="/")
        return response

    app.router.add_post("/login", login)
    app.router.add_get("/whoami", whoami)
    app.router.add_post("/logout", logout)
    return app


@pytest.fixture
def site() -> Iterator[ServerThread]:
    with ServerThread(session_app()) as server:
        yield server


def profile(tmp_path: Path, url: str, **top: Any) -> Any:
    names = tmp_path / "users.csv"
    names.write_text("name\n" + "".join(f"user-{i}\n" for i in range(USERS)))
    document = {
        "name": "sessions",
        "base_url": url,
        "data": {"file": str(names), "per": "user"},
        "setup": ["log in"],
        "teardown": ["log out"],
        "load": {"users": USERS, "requests": 1000},
        "endpoints": [
            {"name": "log in", "method": "POST", "path": "/login?name={row.name}"},
            {"name": "who am I", "path": "/whoami", "headers": {"X-Claimed": "{row.name}"}},
            {"name": "log out", "method": "POST", "path": "/logout"},
        ],
        **top,
    }
    return parse_profile(document, str(tmp_path / "sessions.toml"))


async def run(plan: Any) -> Snapshot:
    return await (await start(plan)).wait()


def by_name(final: Snapshot) -> dict[str, Any]:
    return {ep.name: ep for ep in final.endpoints}


@pytest.mark.parametrize("client", ["fast", "aiohttp"])
async def test_each_user_logs_in_once_and_keeps_its_own_cookie(
    site: ServerThread, tmp_path: Path, client: str
) -> None:
    final = await run(build_plan(profile(tmp_path, site.url), Overrides(client=client)))
    seen = site.app[SEEN]
    endpoints = by_name(final)
    assert final.stop_reason == "requests done"
    assert seen["login"] == USERS == endpoints["log in"].requests  # setup: once per user
    assert seen["whoami"] == 1000 == endpoints["who am I"].requests  # the load's budget
    assert seen["no cookie"] == seen["someone else's cookie"] == 0
    assert seen["cookie sent off its path"] == 0
    assert seen["logout"] == USERS == endpoints["log out"].requests  # teardown: once each
    # The run's total is the load's: setup and teardown are counted as themselves.
    assert final.total.requests == 1000 and final.total.errors == 0


async def test_cookies_off_sends_none(site: ServerThread, tmp_path: Path) -> None:
    plan = build_plan(profile(tmp_path, site.url, cookies=False), Overrides())
    final = await run(plan)
    seen = site.app[SEEN]
    assert seen["no cookie"] == 1000 and seen["whoami"] == 0
    assert by_name(final)["who am I"].status_counts == {401: 1000}


async def test_a_failing_setup_is_the_setup_endpoints_and_is_tried_again(
    tmp_path: Path,
) -> None:
    with ServerThread(session_app(fail_logins=5)) as server:
        document = profile(tmp_path, server.url).document
        document = {**document, "load": {"users": 5, "requests": 20}}
        plan = build_plan(parse_profile(document, str(tmp_path / "s.toml")), Overrides())
        final = await run(plan)
        seen = server.app[SEEN]
    endpoints = by_name(final)
    # Five refused logins, each user's first, then each user logged in: no load was sent
    # before its login worked, and none of it failed.
    assert endpoints["log in"].status_counts == {503: 5, 200: 5}
    assert endpoints["log in"].errors == 5
    assert final.total.errors == 0  # the failed logins are the login's, not the load's
    assert endpoints["who am I"].errors == 0 and seen["no cookie"] == 0
    assert seen["whoami"] == 20


def test_setup_steps_are_endpoints_and_not_in_the_flow(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"setup\[0\]: expected the name of an endpoint"):
        profile(tmp_path, "http://127.0.0.1:9", setup=["nope"])
    with pytest.raises(InputError, match=r'setup\[0\]: "log in" is in flow too'):
        profile(tmp_path, "http://127.0.0.1:9", flow=["log in", "who am I"])
    with pytest.raises(InputError, match="at least one endpoint left for the load"):
        profile(tmp_path, "http://127.0.0.1:9", setup=["log in", "who am I"])


async def test_in_the_open_model_cookies_belong_to_the_flow_instance(
    site: ServerThread, tmp_path: Path
) -> None:
    document = {
        **profile(tmp_path, site.url).document,
        "setup": None,
        "teardown": None,
        "flow": ["log in", "who am I"],
        "load": {"model": "open", "rate": 40, "requests": 60},
    }
    document = {key: value for key, value in document.items() if value is not None}
    final = await run(build_plan(parse_profile(document, str(tmp_path / "o.toml")), Overrides()))
    seen = site.app[SEEN]
    # Each arrival logs in and asks who it is with the cookie it was just given: none is
    # sent without one or with another arrival's.
    assert seen["whoami"] == by_name(final)["who am I"].requests > 0
    assert seen["no cookie"] == seen["someone else's cookie"] == 0


def test_setup_needs_users(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="setup: the open model has no users to set up"):
        build_plan(profile(tmp_path, "http://127.0.0.1:9"), Overrides(model="open", rate=5))
