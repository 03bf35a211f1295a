"""Importers: curl, HAR and OpenAPI into profiles that load and run against the demo target."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from conftest import ServerThread

from stressdeck.core.errors import InputError
from stressdeck.engine import Snapshot, build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.observe.demo import DemoServerThread
from stressdeck.profiles.importers import (
    import_command,
    profile_from_curl,
    profile_from_har,
    profile_from_openapi,
    render_profile,
    write_profile,
)
from stressdeck.profiles.importers.curl import split_command
from stressdeck.profiles.profile import load_profile

SECRET = "abc123"


@pytest.fixture
def demo() -> Iterator[str]:
    # Fresh for each test: the demo keeps its newest 10,000 items, and the fast client's
    # creates in earlier tests would evict /items/7, which the imported profiles read.
    with DemoServerThread(seed=1) as server:
        yield server.url


async def run_profile(path: Path, base_url: str, env: dict[str, str] | None = None) -> Snapshot:
    profile = load_profile(path)
    plan = build_plan(profile, Overrides(base_url=base_url, duration=1.0, users=4), env=env or {})
    return await (await start(plan)).wait()


def statuses(snapshot: Snapshot) -> dict[str, set[int]]:
    return {ep.name: set(ep.status_counts) for ep in snapshot.endpoints}


# ---- curl ------------------------------------------------------------------------------------

CURL = (
    "curl -X POST 'http://127.0.0.1:{port}/items' -H 'Content-Type: application/json' "
    "-H 'Authorization: Bearer abc123' -d '{{\"name\":\"x\"}}'"
)


async def test_curl_import_loads_runs_and_keeps_the_secret_out(demo: str, tmp_path: Path) -> None:
    port = demo.rsplit(":", 1)[1]
    out = tmp_path / "curl.toml"
    path, warnings = import_command("curl", CURL.format(port=port), out=str(out))
    text = path.read_text()
    assert SECRET not in text and "${STRESSDECK_AUTHORIZATION}" in text
    assert any("STRESSDECK_AUTHORIZATION" in w for w in warnings)
    assert all(SECRET not in w for w in warnings)
    profile = load_profile(path)
    (endpoint,) = profile.endpoints
    assert (endpoint.method, endpoint.path, endpoint.json) == ("POST", "/items", {"name": "x"})
    assert endpoint.headers["Authorization"] == "Bearer ${STRESSDECK_AUTHORIZATION}"
    assert profile.base_url == demo
    final = await run_profile(path, demo, {"STRESSDECK_AUTHORIZATION": SECRET})
    assert final.total.requests > 0 and final.total.errors == 0
    assert final.total.status_counts == {201: final.total.requests}


async def test_curl_import_sends_what_curl_would(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": await request.text(),
            }
        )
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    with ServerThread(app) as server:
        command = (
            f"curl '{server.url}/search?q=load' \\\n  -H 'X-Api-Key: k-123' -u bob:hunter2 "
            "-A 'agent/1' -b 'sid=s-1' --data-urlencode 'term=a b' -G -sSLk --compressed"
        )
        path, warnings = import_command("curl", command, out=str(tmp_path / "search.toml"))
        text = path.read_text()
        for secret in ("k-123", "hunter2", "s-1"):
            assert secret not in text and all(secret not in w for w in warnings)
        env = {
            "STRESSDECK_X_API_KEY": "k-123",
            "STRESSDECK_BASIC_AUTH": "Ym9iOmh1bnRlcjI=",
            "STRESSDECK_COOKIE": "sid=s-1",
        }
        final = await run_profile(path, server.url, env)
    assert final.total.requests > 0 and load_profile(path).insecure
    first = seen[0]
    assert (first["method"], first["path"], first["query"]) == (
        "GET",
        "/search",
        {"q": "load", "term": "a b"},
    )
    assert first["headers"]["X-Api-Key"] == "k-123"
    assert first["headers"]["Authorization"] == "Basic Ym9iOmh1bnRlcjI="
    assert first["headers"]["Cookie"] == "sid=s-1" and first["headers"]["User-Agent"] == "agent/1"
    assert first["body"] == ""


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            "curl -d 'a=1&b=2' http://h/x",
            {
                "method": "POST",
                "body": "a=1&b=2",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
        ),
        ("curl -d a=1 -d b=2 -X PUT http://h/x", {"method": "PUT", "body": "a=1&b=2"}),
        (
            "curl http://h/x --json '{\"a\": [1, 2]}'",
            {
                "method": "POST",
                "json": {"a": [1, 2]},
                "headers": {"Content-Type": "application/json", "Accept": "application/json"},
            },
        ),
        ("curl -XPATCH http://h/x -d '[1,2]'", {"method": "PATCH", "json": [1, 2]}),
        ("curl -I http://h/x", {"method": "HEAD"}),
        ("curl --url http://h/x?tag=a&tag=b", {"method": "GET", "path": "/x"}),
        ("curl 'http://h/x?tag=a&tag=b'", {"path": "/x?tag=a&tag=b"}),
        ("curl -H 'Content-Type: text/plain' -d '{\"a\":1}' http://h/x", {"body": '{"a":1}'}),
        ("curl -m 2.5 -H 'Accept:' h:8080/x", {"timeout": "2.5s", "path": "/x"}),
        (
            "curl http://h/x --oauth2-bearer tok",
            {"headers": {"Authorization": "Bearer ${STRESSDECK_AUTHORIZATION}"}},
        ),
        (
            "curl 'http://h/x?api_key=zz&max_tokens=5'",
            {"query": {"api_key": "${STRESSDECK_API_KEY}", "max_tokens": "5"}},
        ),
        (
            'curl http://h/login --data-raw $\'{"user":"u","password":"p\\\'w"}\'',
            {"json": {"user": "u", "password": "<redacted>"}},
        ),
    ],
)
def test_curl_options(command: str, expected: dict[str, Any]) -> None:
    document, _ = profile_from_curl(command)
    (endpoint,) = document["endpoints"]
    for key, value in expected.items():
        assert endpoint.get(key) == value, key


def test_curl_flags_and_multiple_urls() -> None:
    document, warnings = profile_from_curl(
        "curl -k -v -i -L -s http://a.example/one http://a.example/two https://b.example/three | jq ."
    )
    assert document["insecure"] is True and document["base_url"] == "http://a.example"
    one, two, three = document["endpoints"]
    assert (one["path"], two["path"], three["url"]) == ("/one", "/two", "https://b.example/three")
    assert any("jq" in w for w in warnings)


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ('curl \'a b\' "c \\"d\\"" e\\ f', ["curl", "a b", 'c "d"', "e f"]),
        ("curl \\\n  -H x \\\r\n  y", ["curl", "-H", "x", "y"]),
        ("curl $'line\\none\\ttab\\'q\\x41\\u00e9'", ["curl", "line\none\ttab'qAé"]),
        ("curl a # a comment", ["curl", "a"]),
        ("curl a 2>/dev/null", ["curl", "a"]),
    ],
)
def test_split_command(command: str, words: list[str]) -> None:
    assert split_command(command)[0] == words


# ---- HAR -------------------------------------------------------------------------------------


def har_entry(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    status: int = 200,
    post: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "method": method,
        "url": url,
        "httpVersion": "HTTP/2",
        "headers": [{"name": k, "value": v} for k, v in (headers or {}).items()],
        "queryString": [],
        "cookies": [],
        "headersSize": -1,
        "bodySize": 0,
    }
    if post is not None:
        request["postData"] = post
    return {
        "startedDateTime": "2024-05-01T10:00:00.000Z",
        "time": 5,
        "request": request,
        "response": {
            "status": status,
            "statusText": "",
            "httpVersion": "HTTP/2",
            "headers": [],
            "cookies": [],
            "content": {"size": 0, "mimeType": "application/json"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": 0,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 5, "receive": 0},
        **extra,
    }


def write_har(path: Path, origin: str) -> Path:
    browser = {
        ":authority": "app.example",
        ":method": "GET",
        "Host": "app.example",
        "Accept": "application/json",
        "Accept-Encoding": "gzip, br",
        "Connection": "keep-alive",
        "cookie": f"session={SECRET}",
    }
    entries = [
        har_entry("GET", f"{origin}/items?limit=5", headers=browser),
        har_entry("GET", f"{origin}/items?limit=10", headers=browser),
        har_entry(
            "GET", f"{origin}/items/7", headers={**browser, "Authorization": f"Bearer {SECRET}"}
        ),
        har_entry(
            "POST",
            f"{origin}/items",
            status=201,
            headers={**browser, "Content-Type": "application/json", "Content-Length": "15"},
            post={"mimeType": "application/json", "text": '{"name": "har"}'},
        ),
        har_entry("GET", "data:image/png;base64,iVBORw0KGgo="),
        har_entry("GET", "wss://app.example/socket", status=101, _webSocketMessages=[]),
        har_entry("GET", "https://cdn.example.net/app.js"),
    ]
    path.write_text(
        json.dumps(
            {
                "log": {
                    "version": "1.2",
                    "creator": {"name": "test", "version": "1"},
                    "entries": entries,
                }
            }
        )
    )
    return path


async def test_har_import_loads_and_runs(demo: str, tmp_path: Path) -> None:
    har = write_har(tmp_path / "shop.har", demo)
    path, warnings = import_command("har", str(har), out=str(tmp_path / "shop.toml"))
    text = path.read_text()
    assert SECRET not in text
    profile = load_profile(path)
    by_name = {ep.name: ep for ep in profile.endpoints}
    assert set(by_name) == {"GET /items", "GET /items/7", "POST /items"}
    assert by_name["GET /items"].weight == 2 and by_name["GET /items"].query == {"limit": "5"}
    assert by_name["POST /items"].json == {"name": "har"} and by_name["POST /items"].expect == (
        201,
    )
    headers = {k.lower() for k in by_name["POST /items"].headers}
    assert headers == {"accept", "content-type", "cookie"}
    assert by_name["GET /items/7"].headers["Authorization"] == "Bearer ${STRESSDECK_AUTHORIZATION}"
    joined = " ".join(warnings)
    for expected in (
        "data: URLs",
        "WebSocket",
        "cdn.example.net",
        "STRESSDECK_COOKIE",
        "STRESSDECK_AUTHORIZATION",
    ):
        assert expected in joined
    env = {"STRESSDECK_COOKIE": f"session={SECRET}", "STRESSDECK_AUTHORIZATION": SECRET}
    final = await run_profile(path, demo, env)
    assert final.total.requests > 0 and final.total.errors == 0
    assert statuses(final) == {"GET /items": {200}, "GET /items/7": {200}, "POST /items": {201}}


def test_har_form_params_and_multipart(tmp_path: Path) -> None:
    har = tmp_path / "forms.har"
    har.write_text(
        json.dumps(
            {
                "log": {
                    "entries": [
                        har_entry(
                            "POST",
                            "http://h.example/login",
                            post={
                                "mimeType": "application/x-www-form-urlencoded",
                                "params": [
                                    {"name": "user", "value": "u"},
                                    {"name": "password", "value": "pw"},
                                ],
                            },
                        ),
                        har_entry(
                            "POST",
                            "http://h.example/upload",
                            post={"mimeType": "multipart/form-data; boundary=x", "text": "--x--"},
                        ),
                        har_entry("DELETE", "http://h.example/items/9", status=204),
                        har_entry("DELETE", "http://h.example/items/9", status=404),
                    ]
                }
            }
        )
    )
    document, warnings = profile_from_har(har)
    login, delete = document["endpoints"]
    assert (delete["method"], delete["weight"], delete["expect"]) == ("DELETE", 2, [204])
    assert login["body"] == "user=u&password=%3Credacted%3E"
    assert login["headers"] == {"Content-Type": "application/x-www-form-urlencoded"}
    assert any("multipart" in w for w in warnings) and any("password" in w for w in warnings)


# ---- OpenAPI ---------------------------------------------------------------------------------

SPEC_YAML = """\
openapi: 3.0.3
info: {title: Demo Items, version: "1.0"}
servers:
  - url: "{scheme}://127.0.0.1:9/"
    variables: {scheme: {default: http}}
security:
  - token: []
paths:
  /health:
    get:
      operationId: health
      security: []
      responses: {200: {description: ok}}
  /items:
    get:
      operationId: listItems
      parameters:
        - {name: limit, in: query, required: true, schema: {type: integer, default: 10}}
        - {name: cursor, in: query, schema: {type: string}}
      responses: {"200": {description: ok}, default: {description: error}}
    post:
      operationId: createItem
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/NewItem"}
      responses: {"201": {description: created}}
  /items/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: integer, example: 7}}
    get:
      operationId: getItem
      responses: {"200": {description: ok}, "404": {description: missing}}
    put:
      operationId: putItem
      requestBody:
        content:
          application/json:
            example: {name: widget, price: 3, since: 2024-01-01}
      responses: {"200": {description: ok}}
      callbacks:
        changed: {}
  /items/{id}/photo:
    post:
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer}}
      requestBody:
        content:
          multipart/form-data:
            schema: {type: object}
      responses: {"201": {description: ok}}
  /items/{id}/trace:
    trace:
      responses: {"200": {description: ok}}
components:
  securitySchemes:
    token: {type: http, scheme: bearer}
  schemas:
    NewItem:
      type: object
      required: [name, tags]
      properties:
        id: {type: integer, readOnly: true}
        name: {type: string, example: from-openapi}
        price: {type: number, default: 2.5}
        notes: {type: string}
        tags: {type: array, items: {type: string}}
        parent: {$ref: "#/components/schemas/NewItem"}
"""


@pytest.fixture(params=["yaml", "json"])
def spec_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "yaml":
        path = tmp_path / "items.yaml"
        path.write_text(SPEC_YAML)
    else:
        path = tmp_path / "items.json"
        path.write_text(json.dumps(yaml.safe_load(SPEC_YAML), default=str))
    return path


async def test_openapi_import_loads_and_runs(demo: str, spec_file: Path, tmp_path: Path) -> None:
    path, warnings = import_command("openapi", str(spec_file), out=str(tmp_path / "items.toml"))
    profile = load_profile(path)
    assert profile.base_url == "http://127.0.0.1:9" and profile.name == "Demo Items"
    by_name = {ep.name: ep for ep in profile.endpoints}
    assert set(by_name) == {"health", "listItems", "createItem", "getItem", "putItem"}
    assert by_name["getItem"].path == "/items/7" and by_name["getItem"].expect == (200,)
    assert by_name["listItems"].query == {"limit": "10"}
    assert by_name["createItem"].json == {"name": "from-openapi", "price": 2.5, "tags": ["string"]}
    assert by_name["createItem"].expect == (201,)
    assert by_name["putItem"].json == {"name": "widget", "price": 3, "since": "2024-01-01"}
    assert by_name["getItem"].headers == {"Authorization": "Bearer ${STRESSDECK_AUTHORIZATION}"}
    assert by_name["health"].headers == {}
    joined = " ".join(warnings)
    for expected in (
        "multipart",
        "TRACE",
        "callbacks",
        "built from its schema",
        "STRESSDECK_AUTHORIZATION",
    ):
        assert expected in joined, expected
    final = await run_profile(path, demo, {"STRESSDECK_AUTHORIZATION": "t"})
    assert final.total.requests > 0 and final.total.errors == 0
    assert statuses(final) == {
        "health": {200},
        "listItems": {200},
        "createItem": {201},
        "getItem": {200},
        "putItem": {200},
    }


def test_openapi_base_url_rules(tmp_path: Path) -> None:
    spec = yaml.safe_load(SPEC_YAML)
    spec["servers"] = [{"url": "/api/v1"}]
    path = tmp_path / "relative.json"
    path.write_text(json.dumps(spec, default=str))
    with pytest.raises(InputError, match="--base-url"):
        profile_from_openapi(path)
    document, _ = profile_from_openapi(path, base_url="http://127.0.0.1:8080/")
    assert document["base_url"] == "http://127.0.0.1:8080/api/v1"
    del spec["servers"]
    path.write_text(json.dumps(spec, default=str))
    with pytest.raises(InputError, match="servers"):
        profile_from_openapi(path)
    document, _ = profile_from_openapi(path, base_url="http://127.0.0.1:8080")
    assert document["base_url"] == "http://127.0.0.1:8080"


def test_openapi_placeholders_are_reported(tmp_path: Path) -> None:
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": "http://h"}],
        "paths": {
            "/users/{user}/posts/{post}": {
                "delete": {
                    "parameters": [
                        {
                            "name": "user",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "format": "uuid"},
                        },
                        {
                            "name": "post",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": ["first", "second"]},
                        },
                        {
                            "name": "X-Tenant",
                            "in": "header",
                            "required": True,
                            "schema": {"type": ["integer", "null"]},
                        },
                    ],
                    "responses": {"204": {"description": "gone"}},
                }
            }
        },
    }
    path = tmp_path / "users.json"
    path.write_text(json.dumps(spec))
    document, warnings = profile_from_openapi(path)
    (endpoint,) = document["endpoints"]
    assert endpoint["path"] == "/users/00000000-0000-4000-8000-000000000000/posts/first"
    assert endpoint["headers"] == {"X-Tenant": "1"} and endpoint["expect"] == [204]
    assert any("'user' has no example" in w for w in warnings)
    assert any("DELETE" in w for w in warnings)
    assert not any("'post'" in w for w in warnings)  # an enum is a real value, not a guess


# ---- writing ---------------------------------------------------------------------------------


def test_write_profile_validates_and_refuses_to_overwrite(tmp_path: Path) -> None:
    document, _ = profile_from_curl('curl http://h/x --json \'{"a": null, "b": [1, null]}\'')
    target = tmp_path / "p.toml"
    assert write_profile(document, target) == target
    assert (
        load_profile(target).endpoints[0].body == '{"a": null, "b": [1, null]}'
    )  # TOML has no null
    with pytest.raises(InputError, match="already exists"):
        write_profile(document, target)
    write_profile(document, target, overwrite=True)
    json_target = write_profile(document, tmp_path / "p.json")
    assert load_profile(json_target).endpoints[0].json == {"a": None, "b": [1, None]}
    broken = {**document, "endpoints": []}
    with pytest.raises(InputError, match="endpoints"):
        write_profile(broken, tmp_path / "broken.toml")
    assert not (tmp_path / "broken.toml").exists()


def test_default_output_path_is_a_slug_in_profiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path, _ = import_command("curl", "curl -X POST http://127.0.0.1:1/Items/New")
    assert path == Path("profiles/post-items-new.toml") and path.exists()
    path, _ = import_command("curl", "curl http://127.0.0.1:1/", name="My Smoke Test!")
    assert (
        path == Path("profiles/my-smoke-test.toml") and load_profile(path).name == "My Smoke Test!"
    )
    with pytest.raises(InputError, match="--force"):
        import_command("curl", "curl http://127.0.0.1:1/", name="My Smoke Test!")
    assert (
        import_command("curl", "curl http://127.0.0.1:2/", name="My Smoke Test!", overwrite=True)[0]
        == path
    )


def test_rendered_toml_carries_the_warnings_as_comments() -> None:
    document, warnings = profile_from_curl("curl http://h/x -H 'Authorization: Token abc123'")
    text = render_profile(document, "x.toml", warnings)
    assert text.startswith("# set STRESSDECK_AUTHORIZATION") and SECRET not in text


# ---- bad input: one line, naming the file and field ------------------------------------------

BAD_CURL = [
    ("", "curl"),
    ("wget http://h/x", 'starting with "curl"'),
    ("curl -sS", "expected a URL"),
    ("curl -X", "-X: expected a value"),
    ("curl -X FETCH http://h/x", "-X: expected one of"),
    ("curl -H nocolon http://h/x", '-H: expected "Name: value"'),
    ("curl 'http://h/x", "unterminated ' quote"),
    ("curl ftp://h/x", "expected an http:// or https:// URL"),
    ("curl http://h:99999/x", "expected an http:// or https:// URL"),
    ("curl -F file=@a.png http://h/x", "-F: multipart"),
    ("curl -d @/nonexistent/body.json http://h/x", "--data: file not found"),
    ("curl -m soon http://h/x", "-m: expected a number"),
    ('curl ^"http://h/x^" -H ^"a: b^"', "Copy as cURL (bash)"),
]


@pytest.mark.parametrize(("command", "message"), BAD_CURL)
def test_bad_curl_is_one_line(command: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        profile_from_curl(command)
    line = caught.value.line()
    assert message in line and "\n" not in line and line.startswith("curl")


BAD_FILES = [
    ("har", "t.har", '{"log": {"entries": [', "invalid JSON"),
    ("har", "t.har", '{"entries": []}', "log: expected a table"),
    ("har", "t.har", '{"log": {"entries": {}}}', "log.entries: expected a list"),
    (
        "har",
        "t.har",
        '{"log": {"entries": [{"request": {"method": "GET", "url": 5}}]}}',
        "log.entries[0].request.url: expected a string",
    ),
    ("har", "t.har", '{"log": {"entries": []}}', "log.entries: expected at least one HTTP request"),
    (
        "har",
        "t.har",
        '{"log": {"entries": [{"request": {"method": "GET", "url": "data:,x"}}]}}',
        "1 data: URLs",
    ),
    ("har", "t.har", "\xff\xfe", "expected UTF-8"),
    ("openapi", "s.yaml", "openapi: 3.0.0\npaths: {/x: [", "invalid YAML"),
    ("openapi", "s.json", '{"openapi": "3.0.0", "paths": {', "invalid JSON"),
    ("openapi", "s.yaml", "swagger: '2.0'\n", "swagger: expected OpenAPI 3.x"),
    ("openapi", "s.yaml", "- a\n- b\n", "expected an OpenAPI document"),
    (
        "openapi",
        "s.yaml",
        "openapi: 3.0.0\nservers: [{url: 'http://h'}]\n",
        "paths: expected a table",
    ),
    (
        "openapi",
        "s.yaml",
        "openapi: 3.0.0\nservers: [{url: 'http://h'}]\npaths: {/x: {get: 5}}\n",
        "paths./x.get: expected an operation",
    ),
    (
        "openapi",
        "s.yaml",
        "openapi: 3.0.0\nservers: [{url: '/api'}]\npaths: {/x: {get: {}}}\n",
        "servers[0].url",
    ),
    (
        "openapi",
        "s.yaml",
        (
            "openapi: 3.0.0\nservers: [{url: 'http://h'}]\npaths: {/x: {post: "
            "{requestBody: {content: {multipart/form-data: {}}}}}}\n"
        ),
        "paths: expected at least one operation",
    ),
]


@pytest.mark.parametrize(("kind", "name", "content", "message"), BAD_FILES)
def test_bad_files_are_one_line(
    tmp_path: Path, kind: str, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode("latin-1") if content.startswith("\xff") else content.encode())
    with pytest.raises(InputError) as caught:
        import_command(kind, str(path), out=str(tmp_path / "out.toml"))
    line = caught.value.line()
    assert message in line and "\n" not in line and line.startswith(str(path))
    assert not (tmp_path / "out.toml").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "postman", "source": "x"}, 'expected "curl", "har" or "openapi"'),
        ({"kind": "har", "source": "/nonexistent/x.har"}, "file not found"),
        ({"kind": "openapi", "source": "/nonexistent/x.yaml"}, "file not found"),
        (
            {"kind": "curl", "source": "curl http://h/x", "out": "x.yaml"},
            "--out: expected a .toml or .json",
        ),
        ({"kind": "curl", "source": "curl http://h/x", "base_url": "h:80"}, "--base-url"),
        ({"kind": "curl", "source": "curl http://h/x", "name": " "}, "--name"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("out", str(tmp_path / "out.toml"))
    with pytest.raises(InputError) as caught:
        import_command(**kwargs)
    assert message in caught.value.line() and "\n" not in caught.value.line()


def test_every_curl_option_kind_has_a_handler_and_every_handler_an_option() -> None:
    from stressdeck.profiles.importers import curl

    kinds = {"url", *curl._WITH_VALUE.values(), *curl._FLAGS.values()}
    assert kinds == set(curl._HANDLERS)
