"""A Plan: a profile made ready to run, with command-line overrides and ``${ENV}`` expanded.

Plans are frozen and picklable: they travel to worker processes as they are.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from yarl import URL

from stressdeck.engine.load import PRESETS, SOAK_DEFAULT_SECONDS, preset_stages, stages_duration
from stressdeck.errors import InputError
from stressdeck.profile import Endpoint, LoadSpec, Profile, check_url
from stressdeck.thresholds import Threshold

DEFAULT_DURATION = 30.0
DEFAULT_MAX_DURATION = 600.0
DEFAULT_TICK = 0.25
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class RequestSpec:
    """One endpoint, prepared once: nothing about it is computed again per request."""

    name: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    expect: frozenset[int]
    think: float
    timeout: float

    def is_ok(self, status: int) -> bool:
        return status in self.expect if self.expect else status < 400


@dataclass(frozen=True)
class Plan:
    name: str
    target: str
    requests: tuple[RequestSpec, ...]
    weights: tuple[float, ...]
    load: LoadSpec
    thresholds: tuple[Threshold, ...] = ()
    endpoint_thresholds: tuple[tuple[Threshold, ...], ...] = ()
    abort_on_fail: bool = False
    abort_grace: float = 0.0
    max_duration: float = DEFAULT_MAX_DURATION
    insecure: bool = False
    tick: float = DEFAULT_TICK
    source: str = ""
    # The profile as written (``${ENV}`` unexpanded) and the overrides, for sessions and replay.
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    overrides: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def endpoint_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.requests)

    @property
    def duration(self) -> float | None:
        return self.load.duration

    @property
    def base_load(self) -> float:
        return float(self.load.rate if self.load.model == "open" else self.load.users)


def expand_env(text: str, source: str, where: str, env: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` with the variable's value; a missing variable is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise InputError(source, where, f"environment variable {name} is not set")
        return env[name]

    return _ENV_REFERENCE.sub(value, text)


def _prepare(profile: Profile, index: int, endpoint: Endpoint, base_url: str | None,
             env: Mapping[str, str]) -> RequestSpec:
    where = f"endpoints[{index}]"
    source = profile.source
    if endpoint.url is not None:
        url = expand_env(endpoint.url, source, f"{where}.url", env)
    else:
        base = expand_env(base_url or "", source, "base_url", env)
        url = base.rstrip("/") + expand_env(endpoint.path or "", source, f"{where}.path", env)
    check_url(source, f"{where}.url" if endpoint.url else "base_url", url)
    if endpoint.query:
        url = str(URL(url).update_query({k: expand_env(v, source, f"{where}.query.{k}", env)
                                         for k, v in endpoint.query.items()}))
    headers = dict(profile.headers)
    headers.update(endpoint.headers)
    expanded = tuple((name, expand_env(value, source, f"{where}.headers.{name}", env))
                     for name, value in headers.items())
    body: bytes | None = None
    if endpoint.json is not None:
        body = json.dumps(endpoint.json, separators=(",", ":")).encode()
        if not any(name.lower() == "content-type" for name, _ in expanded):
            expanded += (("Content-Type", "application/json"),)
    elif endpoint.body is not None:
        body = endpoint.body.encode()
    return RequestSpec(
        name=endpoint.name, method=endpoint.method, url=url, headers=expanded, body=body,
        expect=frozenset(endpoint.expect), think=endpoint.think,
        timeout=endpoint.timeout or profile.timeout,
    )


def build_plan(
    profile: Profile,
    *,
    base_url: str | None = None,
    users: int | None = None,
    rate: float | None = None,
    model: str | None = None,
    duration: float | None = None,
    requests: int | None = None,
    preset: str | None = None,
    max_duration: float = DEFAULT_MAX_DURATION,
    tick: float = DEFAULT_TICK,
    env: Mapping[str, str] | None = None,
) -> Plan:
    """Apply overrides to a profile and prepare every request; raises InputError."""
    env = os.environ if env is None else env
    overrides = {k: v for k, v in dict(base_url=base_url, users=users, rate=rate, model=model,
                                       duration=duration, requests=requests, preset=preset).items()
                 if v is not None}
    if base_url is not None:
        check_url("--base-url", "", base_url)
    load = profile.load
    if model is not None:
        load = replace(load, model=model)
    if users is not None:
        load = replace(load, users=users)
    if rate is not None:
        load = replace(load, rate=rate)
    if requests is not None:
        load = replace(load, requests=requests, duration=None)
    if duration is not None:
        load = replace(load, duration=duration, requests=None)
    if load.model == "open" and load.rate is None:
        raise InputError(profile.source, "load.rate", "required for the open model (or pass --rate)")
    if load.model == "open" and load.max_in_flight is None:
        # Enough for the rate at a 10 s latency, within a sane bound.
        load = replace(load, max_in_flight=int(min(max(load.rate or 1, 1) * 10, 10_000)))
    preset = preset or load.preset
    if preset is not None:
        if preset not in PRESETS:
            raise InputError("--preset", "", "expected one of " + ", ".join(PRESETS))
        base = float(load.rate if load.model == "open" else load.users)
        span = load.duration or (SOAK_DEFAULT_SECONDS if preset == "soak" else DEFAULT_DURATION)
        load = replace(load, preset=preset, stages=preset_stages(preset, base, span), duration=span)
    if load.duration is None and load.requests is None:
        load = replace(load, duration=stages_duration(load.stages) if load.stages else DEFAULT_DURATION)
    source_base = base_url or profile.base_url
    specs = tuple(_prepare(profile, i, ep, source_base, env) for i, ep in enumerate(profile.endpoints))
    target = str(URL(specs[0].url).origin()) if source_base is None else _origin(source_base, env, profile.source)
    return Plan(
        name=profile.name,
        target=target,
        requests=specs,
        weights=tuple(ep.weight for ep in profile.endpoints),
        load=load,
        thresholds=profile.thresholds,
        endpoint_thresholds=tuple(ep.thresholds for ep in profile.endpoints),
        abort_on_fail=profile.abort_on_fail,
        abort_grace=profile.abort_grace,
        max_duration=max_duration,
        insecure=profile.insecure,
        tick=tick,
        source=profile.source,
        document=profile.document,
        overrides=overrides,
    )


def _origin(base_url: str, env: Mapping[str, str], source: str) -> str:
    return str(URL(expand_env(base_url, source, "base_url", env)).origin())
