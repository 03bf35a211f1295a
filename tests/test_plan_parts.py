"""build_plan's pure parts, table-driven: the effective load, the metrics source, the client."""

from __future__ import annotations

from typing import Any

import pytest

from stressdeck.core.errors import InputError
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.plan import (
    DEFAULT_CONNECTIONS,
    DEFAULT_DURATION,
    asked_client,
    build_plan,
    effective_load,
    metrics_source,
)
from stressdeck.profiles.profile import Profile, parse_profile


def profile(load: dict[str, Any] | None = None, **top: Any) -> Profile:
    endpoint = {"name": "a", "path": "/a", **top.pop("endpoint", {})}
    document = {"name": "p", "base_url": "http://127.0.0.1:9", "endpoints": [endpoint], **top}
    if load is not None:
        document["load"] = load
    return parse_profile(document, "p.toml")


@pytest.mark.parametrize(
    ("load", "overrides", "expected"),
    [
        # closed model: the profile's users, the default duration
        ({}, Overrides(), {"model": "closed", "users": 10, "duration": DEFAULT_DURATION}),
        ({"users": 3}, Overrides(users=7), {"users": 7}),
        # a request budget replaces the duration, and a duration the budget
        ({"duration": "1m"}, Overrides(requests=50), {"requests": 50, "duration": None}),
        ({"requests": 50}, Overrides(duration=5.0), {"requests": None, "duration": 5.0}),
        # the open model: default connections, an in-flight bound of 10 s at the peak rate
        (
            {"model": "open", "rate": 200},
            Overrides(),
            {"connections": DEFAULT_CONNECTIONS, "max_in_flight": 2000},
        ),
        ({"model": "open", "rate": 5000}, Overrides(), {"max_in_flight": 10_000}),
        ({}, Overrides(model="open", rate=50.0, connections=8), {"connections": 8}),
        # stages decide the duration; a preset brings its own stages over the duration
        (
            {"stages": [{"duration": "10s", "target": 5}, {"duration": "20s", "target": 1}]},
            Overrides(),
            {"duration": 30.0},
        ),
        ({"users": 4}, Overrides(preset="light", duration=60.0), {"preset": "light"}),
    ],
)
def test_effective_load(
    load: dict[str, Any], overrides: Overrides, expected: dict[str, Any]
) -> None:
    result = effective_load(profile(load), overrides)
    assert {key: getattr(result, key) for key in expected} == expected
    if overrides.preset:
        assert result.stages and result.duration == overrides.duration


@pytest.mark.parametrize(
    ("load", "overrides", "line"),
    [
        ({"model": "open"}, Overrides(), "p.toml: load.rate: required for the open model"),
        ({}, Overrides(preset="nope"), "--preset: expected one of"),
    ],
)
def test_effective_load_refuses(load: dict[str, Any], overrides: Overrides, line: str) -> None:
    with pytest.raises(InputError) as caught:
        effective_load(profile(load), overrides)
    assert caught.value.line().startswith(line), caught.value.line()


def test_metrics_source() -> None:
    with_metrics = profile(metrics_url="/metrics", metrics=["http_requests_total"])
    assert metrics_source(with_metrics, Overrides()) == ("/metrics", ("http_requests_total",))
    # --metric adds to the profile's series (once each); --metrics-url replaces its URL
    assert metrics_source(
        with_metrics,
        Overrides(metrics_url="http://127.0.0.1:9/m", metrics=("up", "http_requests_total")),
    ) == ("http://127.0.0.1:9/m", ("http_requests_total", "up"))
    assert metrics_source(profile(), Overrides()) == (None, ())
    with pytest.raises(InputError, match="needs a metrics URL"):
        metrics_source(profile(), Overrides(metrics=("up",)))
    with pytest.raises(InputError) as caught:
        metrics_source(profile(), Overrides(metrics_url="ftp://127.0.0.1/m"))
    assert caught.value.line().startswith("--metrics-url")


def test_a_relative_metrics_url_follows_the_target() -> None:
    plan = build_plan(profile(metrics_url="/metrics"), Overrides(base_url="http://127.0.0.1:8765"))
    assert plan.metrics_url == "http://127.0.0.1:8765/metrics"


def test_asked_client() -> None:
    plain = profile()
    redirecting = profile(endpoint={"follow_redirects": True})
    specs = build_plan(plain).requests
    assert asked_client(plain, Overrides(), specs) == "auto"
    assert asked_client(plain, Overrides(client="aiohttp"), specs) == "aiohttp"
    assert asked_client(profile(client="fast"), Overrides(), specs) == "fast"
    with pytest.raises(InputError, match="expected one of auto, fast, aiohttp"):
        asked_client(plain, Overrides(client="curl"), specs)
    redirecting_specs = build_plan(redirecting).requests
    with pytest.raises(InputError) as caught:
        asked_client(redirecting, Overrides(client="fast"), redirecting_specs)
    assert caught.value.line() == (
        "--client: fast does not follow redirects, and endpoints[0] (a) asks to: "
        "use auto or aiohttp"
    )
