"""Profile loading and validation: good files load, every bad one gives one exact line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stressdeck.core.errors import InputError
from stressdeck.core.units import parse_duration
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.plan import build_plan
from stressdeck.profiles.profile import load_profile, parse_profile

PROFILES = Path(__file__).parent.parent / "profiles"
GOOD = {
    "name": "shop",
    "base_url": "http://127.0.0.1:8000",
    "endpoints": [
        {"name": "home", "path": "/"},
        {"name": "buy", "method": "POST", "path": "/buy", "json": {"sku": 1}, "weight": 2},
        {"name": "pay", "method": "PUT", "path": "/pay", "weight": "abc"},
    ],
}


def _bad(**changes: object) -> dict:
    document = json.loads(json.dumps(GOOD))
    document["endpoints"][2]["weight"] = 1
    for path, value in changes.items():
        node = document
        keys = path.split("__")
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        last = keys[-1]
        if value is DELETE:
            del node[int(last) if last.isdigit() else last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
    return document


DELETE = object()


@pytest.mark.parametrize("name", ["demo-health.toml", "demo-mix.toml", "demo-stream.toml"])
def test_shipped_profiles_load_and_plan(name: str) -> None:
    profile = load_profile(PROFILES / name)
    plan = build_plan(profile, Overrides(base_url="http://127.0.0.1:9"))
    assert plan.requests and all(
        spec.url.startswith("http://127.0.0.1:9/") for spec in plan.requests
    )


def test_toml_and_json_give_the_same_profile(tmp_path: Path) -> None:
    toml_text = (PROFILES / "demo-mix.toml").read_text()
    import tomllib

    json_path = tmp_path / "mix.json"
    json_path.write_text(json.dumps(tomllib.loads(toml_text)))
    toml_profile = load_profile(PROFILES / "demo-mix.toml")
    json_profile = load_profile(json_path)
    assert toml_profile.endpoints == json_profile.endpoints
    assert toml_profile.load == json_profile.load
    assert toml_profile.thresholds == json_profile.thresholds


BAD_CASES = [
    (
        _bad(endpoints__2__weight="abc"),
        'endpoints[2].weight: expected a positive number, got "abc"',
    ),
    (_bad(endpoints__1__weight=0), "endpoints[1].weight: expected a positive number, got 0"),
    (
        _bad(endpoints__0__method="FETCH"),
        'endpoints[0].method: expected one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, got "FETCH"',
    ),
    (
        _bad(base_url="ftp://example.invalid"),
        'base_url: expected an http:// or https:// URL, got "ftp://example.invalid"',
    ),
    (_bad(endpoints__0__colour="red"), "endpoints[0].colour: unknown key"),
    (_bad(speed=3), "speed: unknown key"),
    (_bad(load__users=-5), "load.users: expected a positive whole number, got -5"),
    (_bad(load__users=2.5), "load.users: expected a positive whole number, got 2.5"),
    (
        _bad(defaults__timeout="0s"),
        'defaults.timeout: expected a duration like "500ms", "30s" or "2m", got "0s"',
    ),
    (
        _bad(load__duration="soon"),
        'load.duration: expected a duration like "500ms", "30s" or "2m", got "soon"',
    ),
    (_bad(load__model="random"), 'load.model: expected "closed" or "open", got "random"'),
    (_bad(name=DELETE), "name: required field is missing"),
    (_bad(endpoints=[]), "endpoints: expected a non-empty list of tables, got a list"),
    (
        _bad(endpoints__0__path=DELETE),
        "endpoints[0].path: required field is missing (give path, or a full url)",
    ),
    (
        _bad(endpoints__0__url="not a url"),
        "endpoints[0].url: expected either path or url, not both",
    ),
    (
        _bad(endpoints__1__expect=[200, 999]),
        "endpoints[1].expect: expected a list of HTTP status codes (100-599), got a list",
    ),
    (
        _bad(endpoints__0__headers={"X-Count": [1]}),
        "endpoints[0].headers.X-Count: expected a string, got a list",
    ),
    (
        _bad(thresholds=["p95 < fast"]),
        'thresholds[0]: expected an expression like "p95 < 200ms", "error_rate < 1%", "rps > 100" or "p95 < 200ms for 10s", got "p95 < fast"',
    ),
    (
        _bad(thresholds=["p42 < 10ms"]),
        'thresholds[0]: unknown metric "p42"; expected one of p50, p90, p95, p99, p999, max, mean, ttfb_p95, error_rate, checks, rps, dropped',
    ),
    (
        _bad(endpoints__1__name="home"),
        'endpoints[1].name: expected a unique name, "home" is used twice',
    ),
    (
        _bad(endpoints__1__name="Total"),
        'endpoints[1].name: expected another name, "total" is the whole run\'s',
    ),
    (
        _bad(load__requests=10, load__duration="5s"),
        "load.requests: expected either load.duration or load.requests, not both",
    ),
    (_bad(load__stages=[{"duration": "5s"}]), "load.stages[0].target: required field is missing"),
]


@pytest.mark.parametrize(
    ("document", "message"), BAD_CASES, ids=[m.split(":")[0] for _, m in BAD_CASES]
)
def test_bad_profiles_give_one_exact_line(document: dict, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_profile(document, "profiles/shop.toml")
    assert caught.value.line() == f"profiles/shop.toml: {message}"
    assert "\n" not in caught.value.line()


def test_bad_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\n[[endpoints]\n')
    with pytest.raises(InputError, match=r"broken\.toml: invalid TOML"):
        load_profile(broken)
    wrong = tmp_path / "x.yaml"
    wrong.write_text("name: x")
    with pytest.raises(InputError, match=r"x\.yaml: expected a \.toml or \.json file"):
        load_profile(wrong)
    with pytest.raises(InputError, match="missing.toml: file not found"):
        load_profile(tmp_path / "missing.toml")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(
        InputError, match="list.json: expected a table at the top level, got a list"
    ):
        load_profile(listed)


def test_env_references_expand_at_run_time_and_missing_ones_fail() -> None:
    document = _bad()
    document["endpoints"][0]["headers"] = {"Authorization": "Bearer ${API_TOKEN}"}
    document["base_url"] = "${TARGET}"
    profile = parse_profile(document, "p.toml")
    plan = build_plan(profile, env={"API_TOKEN": "s3cret", "TARGET": "http://127.0.0.1:7000"})
    assert ("Authorization", "Bearer s3cret") in plan.requests[0].headers
    assert plan.requests[0].url == "http://127.0.0.1:7000/"
    assert plan.document["endpoints"][0]["headers"]["Authorization"] == "Bearer ${API_TOKEN}"
    with pytest.raises(InputError) as caught:
        build_plan(profile, env={"TARGET": "http://127.0.0.1:7000"})
    assert (
        caught.value.line()
        == "p.toml: endpoints[0].headers.Authorization: environment variable API_TOKEN is not set"
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1.5s", 1.5),
        (3, 3.0),
        ("abc", None),
        ("5 parsecs", None),
        (True, None),
    ],
)
def test_durations(text: object, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_json_bodies_and_query_are_prepared_once() -> None:
    document = _bad()
    document["endpoints"][1]["query"] = {"page": "2"}
    plan = build_plan(parse_profile(document, "p.toml"))
    buy = plan.requests[1]
    assert buy.body == b'{"sku":1}'
    assert ("Content-Type", "application/json") in buy.headers
    assert buy.url == "http://127.0.0.1:8000/buy?page=2"
