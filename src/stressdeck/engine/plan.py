"""A Plan: a profile made ready to run, with command-line overrides and ``${ENV}`` expanded.

Plans are frozen and picklable: they travel to worker processes as they are.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from yarl import URL

from stressdeck.core.errors import InputError, describe
from stressdeck.core.hosts import check_url, is_loopback
from stressdeck.engine.decoding import ACCEPT_ENCODING
from stressdeck.engine.overrides import NO_OVERRIDES, Overrides
from stressdeck.engine.tls import TlsFileError, TlsOptions, check_tls_files
from stressdeck.observe.metrics import parse_series
from stressdeck.profiles.chain import Extractor, Template, compile_template, placeholders
from stressdeck.profiles.checks import Check
from stressdeck.profiles.hooks import Hook, load_hook
from stressdeck.profiles.presets import (
    PRESETS,
    SOAK_DEFAULT_SECONDS,
    preset_stages,
    stages_duration,
)
from stressdeck.profiles.profile import (
    CLIENTS,
    DataSpec,
    Endpoint,
    LoadSpec,
    Profile,
    TlsSettings,
    header_problem,
)
from stressdeck.profiles.routes import NO_ROUTES, Host, Routes, parse_routes, proxies_from_env
from stressdeck.profiles.thresholds import Threshold

DEFAULT_DURATION = 30.0
# Hard caps, lifted only by --i-know: past these a typo is more likely than intent.
MAX_USERS = 2_000
MAX_RATE = 20_000.0
# What even --i-know does not lift, live or read from a session: far past what one
# generator (or a cluster of them) sends, and where a hand-edited 1e308 stops.
CEILING_USERS = 1_000_000
CEILING_RATE = 10_000_000.0
DEFAULT_MAX_DURATION = 600.0
DEFAULT_TICK = 0.25
# Open model: keep-alive connections across all processes, as wrk2's -c. Measured on a
# 2-core machine against nginx (benchmarks/open_model.py): enough to carry 14k req/s at
# sub-millisecond service times, few enough that a stalled target cannot make us flood it.
DEFAULT_CONNECTIONS = 64
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
    # Chaining: set only when the request has {var} placeholders or extracts values.
    url_template: Template | None = None
    query: tuple[tuple[str, Template], ...] = ()
    header_templates: tuple[tuple[str, Template], ...] = ()
    body_template: Template | None = None
    extract: tuple[Extractor, ...] = ()
    # Redirects: followed only when asked, and only to hosts the run may reach.
    follow_redirects: bool = False
    allowed_hosts: frozenset[str] = frozenset()
    # Response checks, judged on every response; a failure is counted apart from errors.
    checks: tuple[Check, ...] = ()
    http2: bool = False  # the endpoint asks for HTTP/2
    hook: Hook | None = None  # the user's function that changes each request (profiles/hooks)
    # Derived once here, read on every send.
    templated: bool = field(init=False)
    needs_body: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "templated",
            bool(self.url_template or self.header_templates or self.body_template or self.hook),
        )
        object.__setattr__(
            self,
            "needs_body",
            any(e.needs_body for e in self.extract) or any(c.needs_body for c in self.checks),
        )

    def redirect_allowed(self, url: URL) -> bool:
        """A redirect may lead to a host of the plan; from loopback, to loopback only."""
        if url.scheme not in ("http", "https") or not url.host or url.user is not None:
            return False
        host = url.host.lower()
        if host in self.allowed_hosts:
            return True
        return (
            is_loopback(host)
            and bool(self.allowed_hosts)
            and all(is_loopback(h) for h in self.allowed_hosts)
        )

    def is_ok(self, status: int) -> bool:
        return status in self.expect if self.expect else status < 400

    def render(
        self, variables: Mapping[str, str]
    ) -> tuple[str, tuple[tuple[str, str], ...], bytes | None]:
        """URL, headers and body with this user's variables, through the endpoint's hook;
        raises MissingVariable, or HookFailed when the hook raised."""
        url = self.url
        if self.url_template is not None:
            url = self.url_template.render(variables)
            if self.query:
                rendered = {name: template.render(variables) for name, template in self.query}
                url = str(URL(url).update_query(rendered))
        headers = self.headers
        if self.header_templates:
            headers = headers + tuple(
                (name, t.render(variables)) for name, t in self.header_templates
            )
        body = self.body
        if self.body_template is not None:
            body = self.body_template.render(variables).encode()
        if self.hook is not None:
            return self.hook.apply(self.method, url, headers, body, variables)
        return url, headers, body


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
    flow: tuple[int, ...] = ()
    data: DataSpec | None = None
    metrics_url: str | None = None
    metrics: tuple[str, ...] = ()
    # Safety caps on live and planned load; the ceilings (CEILING_*) once the user said --i-know.
    max_users: int | None = MAX_USERS
    max_rate: float | None = MAX_RATE
    source: str = ""
    tls: TlsOptions | None = None
    # The HTTP client of each request ("fast", "aiohttp" or "http2"), chosen once here.
    clients: tuple[str, ...] = ()
    routes: Routes = Routes()  # where connections go, when not to the URL's own host
    cookies: bool = True  # a cookie jar per user (engine/users.py)
    # Endpoints (indexes) each user runs once as it starts, and once as it retires.
    setup: tuple[int, ...] = ()
    teardown: tuple[int, ...] = ()
    # The profile as written (``${ENV}`` unexpanded) and the overrides, for sessions and replay.
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    overrides: Overrides = field(default=NO_OVERRIDES, compare=False)

    @property
    def endpoint_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.requests)

    @property
    def duration(self) -> float | None:
        return self.load.duration


def expand_env(text: str, source: str, where: str, env: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` with the variable's value; a missing variable is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise InputError(source, where, f"environment variable {name} is not set")
        return env[name]

    return _ENV_REFERENCE.sub(value, text)


def _hook(profile: Profile, endpoint: Endpoint, index: int) -> Hook | None:
    """The endpoint's hook, else the profile's; imported now, so a missing module or function
    is one line before the run (and imported again in each worker process)."""
    if endpoint.hooks is not None:
        return load_hook(endpoint.hooks, profile.source, f"endpoints[{index}].hooks")
    if profile.hooks is not None:
        return load_hook(profile.hooks, profile.source, "hooks")
    return None


def _prepare(
    profile: Profile, index: int, endpoint: Endpoint, base_url: str | None, env: Mapping[str, str]
) -> RequestSpec:
    where = f"endpoints[{index}]"
    source = profile.source
    if endpoint.url is not None:
        url = expand_env(endpoint.url, source, f"{where}.url", env)
    else:
        base = expand_env(base_url or "", source, "base_url", env)
        url = base.rstrip("/") + expand_env(endpoint.path or "", source, f"{where}.path", env)
    query = tuple(
        (k, expand_env(v, source, f"{where}.query.{k}", env)) for k, v in endpoint.query.items()
    )
    _check_host_is_literal(source, f"{where}.url" if endpoint.url else "base_url", url)
    url_template = None
    if placeholders(url) or any(placeholders(v) for _, v in query):
        url_template = compile_template(url) if placeholders(url) else _literal(url)
    else:
        check_url(source, f"{where}.url" if endpoint.url else "base_url", url)
        if query:
            url = str(URL(url).update_query(dict(query)))
    merged = dict(profile.headers)
    merged.update(endpoint.headers)
    headers: list[tuple[str, str]] = []
    header_templates: list[tuple[str, Template]] = []
    for name, value in merged.items():
        value = expand_env(value, source, f"{where}.headers.{name}", env)
        problem = header_problem(name, value)
        if problem is not None:  # an ${ENV} value; a value as written was checked at load
            raise InputError(source, f"{where}.headers.{name}", f"{problem} (after ${{...}})")
        template = compile_template(value)
        if template is None:
            headers.append((name, value))
        else:
            header_templates.append((name, template))
    compress = profile.compress if endpoint.compress is None else endpoint.compress
    if compress and not any(name.lower() == "accept-encoding" for name in merged):
        headers.append(("Accept-Encoding", ACCEPT_ENCODING))  # a profile's own header wins
    body: bytes | None = None
    body_template = None
    if endpoint.json is not None:
        text = json.dumps(endpoint.json, separators=(",", ":"))
        body_template = compile_template(text, json_escape=True)
        body = text.encode()
        if not any(name.lower() == "content-type" for name in merged):
            headers.append(("Content-Type", "application/json"))
    elif endpoint.body is not None:
        body_template = compile_template(endpoint.body)
        body = endpoint.body.encode()
    return RequestSpec(
        name=endpoint.name,
        method=endpoint.method,
        url=url,
        headers=tuple(headers),
        body=body,
        expect=frozenset(endpoint.expect),
        think=endpoint.think,
        timeout=endpoint.timeout or profile.timeout,
        url_template=url_template,
        query=tuple((k, compile_template(v) or _literal(v)) for k, v in query)
        if url_template
        else (),
        header_templates=tuple(header_templates),
        body_template=body_template,
        extract=endpoint.extract,
        follow_redirects=profile.follow_redirects
        if endpoint.follow_redirects is None
        else endpoint.follow_redirects,
        checks=endpoint.checks,
        http2=endpoint.http2,
        hook=_hook(profile, endpoint, index),
    )


def _literal(text: str) -> Template:
    return Template((text,), ())


def chosen_model(profile_model: str, overrides: Overrides) -> str:
    """The load model a run uses: ``--model`` if given, else the one ``--rate`` (open) or
    ``--users`` (closed) belongs to, else the profile's. Raises InputError when they disagree.

    A rate the closed model would silently ignore is the dangerous case: ``--rate 5`` once
    ran 10 unthrottled users at 3,124 requests/s against what was meant as a gentle probe.
    """
    model, rate, users = overrides.model, overrides.rate, overrides.users
    if rate is not None and users is not None and model is None:
        raise InputError(
            "--rate", "", "goes with the open model and --users with the closed one: give one"
        )
    if rate is not None and model == "closed":
        raise InputError("--rate", "", "is the open model's arrival rate; not with --model closed")
    if users is not None and model == "open":
        raise InputError("--users", "", "is the closed model's; with --model open give --rate")
    if model is not None:
        return model
    if rate is not None:
        return "open"
    if users is not None:
        return "closed"
    return profile_model


MAX_IN_FLIGHT_SECONDS = 10  # open model: what is in flight at a 10 s latency ...
MAX_IN_FLIGHT_CEILING = 10_000  # ... within a sane bound (all processes together)


def derived_max_in_flight(rate: float) -> int:
    """The open model's bound on requests in flight when the profile sets none: ``rate`` at
    a 10 s latency, at most 10,000; a ramp from rate 1 must not drop at 100/s."""
    return int(min(max(rate, 1) * MAX_IN_FLIGHT_SECONDS, MAX_IN_FLIGHT_CEILING))


def build_plan(
    profile: Profile,
    overrides: Overrides = NO_OVERRIDES,
    *,
    max_duration: float = DEFAULT_MAX_DURATION,
    tick: float = DEFAULT_TICK,
    env: Mapping[str, str] | None = None,
    i_know: bool = False,
) -> Plan:
    """Apply overrides to a profile and prepare every request; raises InputError.

    Unless ``i_know``, a plan whose users or rate (at any stage) exceed the safety caps is
    refused: a typo like ``--rate 50000`` should not flatten someone's staging cluster.
    """
    env = os.environ if env is None else env
    base_url = overrides.base_url
    if base_url is not None:
        check_url("--base-url", "", base_url)
    metrics_url, metrics = metrics_source(profile, overrides)
    load = effective_load(profile, overrides)
    _check_caps(load, profile.source, CEILING_RATE, CEILING_USERS, "(no option lifts it)")
    if not i_know:
        _check_caps(load, profile.source, MAX_RATE, MAX_USERS, "(pass --i-know to lift the cap)")
    source_base = base_url or profile.base_url
    specs = tuple(
        _prepare(profile, i, ep, source_base, env) for i, ep in enumerate(profile.endpoints)
    )
    allowed = frozenset(
        host.lower()
        for spec in specs
        if (host := _host(spec.url_template.parts[0] if spec.url_template else spec.url))
    )
    specs = tuple(replace(spec, allowed_hosts=allowed) for spec in specs)
    target = _origin(specs[0].url if source_base is None else source_base, env, profile.source)
    names = [ep.name for ep in profile.endpoints]
    if metrics_url is not None and metrics_url.startswith("/"):
        metrics_url = target + metrics_url  # follows --base-url, e.g. to the demo's free port
    tls = resolve_tls(profile, overrides, env)
    routes = resolve_routes(profile, overrides, env)
    if load.model == "open" and (profile.setup or profile.teardown):
        raise InputError(
            profile.source,
            "setup" if profile.setup else "teardown",
            "the open model has no users to set up: use flow, or the closed model",
        )
    asked = asked_client(profile, overrides, specs, routes)
    return Plan(
        name=profile.name,
        target=target,
        requests=specs,
        # Setup and teardown endpoints are run by each user apart from the mix: weight 0.
        weights=tuple(
            0.0 if ep.name in (*profile.setup, *profile.teardown) else ep.weight
            for ep in profile.endpoints
        ),
        load=load,
        thresholds=profile.thresholds,
        endpoint_thresholds=tuple(ep.thresholds for ep in profile.endpoints),
        abort_on_fail=profile.abort_on_fail,
        abort_grace=profile.abort_grace,
        max_duration=max_duration,
        insecure=profile.insecure,
        tick=tick,
        flow=tuple(names.index(step) for step in profile.flow),
        cookies=profile.cookies,
        setup=tuple(names.index(step) for step in profile.setup),
        teardown=tuple(names.index(step) for step in profile.teardown),
        data=profile.data,
        metrics_url=metrics_url,
        metrics=metrics,
        max_users=CEILING_USERS if i_know else MAX_USERS,
        max_rate=CEILING_RATE if i_know else MAX_RATE,
        source=profile.source,
        tls=tls,
        clients=tuple(choose_client(asked, spec) for spec in specs),
        routes=routes,
        document=profile.document,
        overrides=overrides,
    )


def metrics_source(profile: Profile, overrides: Overrides) -> tuple[str | None, tuple[str, ...]]:
    """The target's metrics to follow: the URL (a ``/path`` is on the target, resolved by the
    caller once the target is known) and the series, the profile's and then ``--metric``'s.
    Raises InputError on a bad ``--metrics-url`` or ``--metric``."""
    metrics_url = overrides.metrics_url
    if metrics_url is not None and not metrics_url.startswith("/"):
        check_url("--metrics-url", "", metrics_url)  # "/metrics": on the target, as in a profile
    asked = overrides.metrics or ()
    if asked and not (metrics_url or profile.metrics_url):
        raise InputError(
            "--metric", "", "needs a metrics URL (--metrics-url or metrics_url in the profile)"
        )
    series = tuple(parse_series(text, "--metric").text for text in asked)
    return metrics_url or profile.metrics_url, tuple(dict.fromkeys((*profile.metrics, *series)))


def effective_load(profile: Profile, overrides: Overrides) -> LoadSpec:
    """The profile's load with the overrides applied and every default filled in: the open
    model's connections and in-flight bound, a preset's stages, the duration. Raises
    InputError on an open model without a rate, or an unknown preset. (The safety caps are
    checked apart: ``--i-know`` lifts them.)"""
    load = replace(profile.load, model=chosen_model(profile.load.model, overrides))
    if overrides.users is not None:
        load = replace(load, users=overrides.users)
    if overrides.rate is not None:
        load = replace(load, rate=overrides.rate)
    if overrides.connections is not None:
        load = replace(load, connections=overrides.connections)
    if load.model == "open" and load.connections is None:
        load = replace(load, connections=DEFAULT_CONNECTIONS)
    if overrides.requests is not None:
        load = replace(load, requests=overrides.requests, duration=None)
    if overrides.duration is not None:
        load = replace(load, duration=overrides.duration, requests=None)
    preset = overrides.preset or load.preset
    # Stages give the open model its rate at every moment; a preset scales a base rate.
    if load.model == "open" and load.rate is None and (preset is not None or not load.stages):
        raise InputError(
            profile.source,
            "load.rate",
            "required for the open model without stages (or pass --rate)",
        )
    if preset is not None:
        if preset not in PRESETS:
            raise InputError("--preset", "", "expected one of " + ", ".join(PRESETS))
        base = float((load.rate if load.model == "open" else load.users) or 0)
        span = load.duration or (SOAK_DEFAULT_SECONDS if preset == "soak" else DEFAULT_DURATION)
        load = replace(load, preset=preset, stages=preset_stages(preset, base, span), duration=span)
    if load.duration is None and load.requests is None:
        load = replace(
            load, duration=stages_duration(load.stages) if load.stages else DEFAULT_DURATION
        )
    if load.model == "open" and load.max_in_flight is None:
        # Enough for the highest rate the run asks (stages and presets included); a rate
        # raised live raises it too (Worker.apply), unless the profile set it.
        peak = max([load.rate or 1, *(stage.target for stage in load.stages)])
        load = replace(load, max_in_flight=derived_max_in_flight(peak))
    return load


def asked_client(
    profile: Profile,
    overrides: Overrides,
    specs: tuple[RequestSpec, ...],
    routes: Routes = NO_ROUTES,
) -> str:
    """The client asked for (``--client``, else the profile's). Only aiohttp follows
    redirects and goes through a proxy: ``fast`` or ``http2`` asked for where an endpoint
    follows redirects, or with a proxy, is refused; ``auto`` with a proxy is aiohttp.
    Raises InputError."""
    if overrides.client is not None and overrides.client not in CLIENTS:
        raise InputError("--client", "", "expected one of " + ", ".join(CLIENTS))
    asked = overrides.client or profile.client
    if routes.http_proxy or routes.https_proxy:
        refused = [s.name for s in specs if s.http2 or asked in ("fast", "http2")]
        if refused:
            raise InputError(
                "--client" if overrides.client else profile.source,
                "" if overrides.client else "proxy",
                f"requests through a proxy are sent by aiohttp over HTTP/1.1, and "
                f"{describe(refused[0])} asks for {asked if asked != 'auto' else 'http2'}",
            )
        asked = "aiohttp"
    for index, spec in enumerate(specs):
        if spec.follow_redirects and (asked in ("fast", "http2") or spec.http2):
            client = "http2" if spec.http2 else asked
            raise InputError(
                "--client" if overrides.client and not spec.http2 else profile.source,
                "" if overrides.client and not spec.http2 else "client",
                f"{client} does not follow redirects, and endpoints[{index}] "
                f"({spec.name}) asks to: use auto or aiohttp",
            )
    return asked


def _check_caps(load: LoadSpec, source: str, max_rate: float, max_users: int, lift: str) -> None:
    open_model = load.model == "open"
    cap = max_rate if open_model else max_users
    what = "rate" if open_model else "users"
    levels = [(f"load.{what}", float((load.rate or 0) if open_model else load.users))]
    levels += [(f"load.stages[{i}].target", stage.target) for i, stage in enumerate(load.stages)]
    for where, level in levels:
        if level > cap:
            unit = " requests/s" if open_model else ""
            raise InputError(
                source,
                where,
                f"{level:g}{unit} is above the safety cap of {cap:g}{unit} {lift}",
            )


def _host(url: str) -> str | None:
    try:
        return URL(url).host
    except ValueError:
        return None


def _origin(base_url: str, env: Mapping[str, str], source: str) -> str:
    try:
        return str(URL(expand_env(base_url, source, "base_url", env)).origin())
    except ValueError:  # a templated host: show it as written
        return base_url


# -- TLS options and the choice of client -------------------------------------------------------

# The override -> (the [tls] key it overrides, its command-line option)
_CLI_TLS = {
    "tls_ca_file": ("ca_file", "--tls-ca"),
    "tls_cert_file": ("cert_file", "--tls-cert"),
    "tls_key_file": ("key_file", "--tls-key"),
    "tls_server_name": ("server_name", "--tls-server-name"),
}


def resolve_tls(
    profile: Profile, overrides: Overrides, env: Mapping[str, str]
) -> TlsOptions | None:
    """The profile's ``[tls]`` with the command line's ``--tls-*`` on top, files checked.

    Profile paths are relative to the profile, command-line ones to the working directory;
    the certificate and key are loaded once here, so a bad file is one line before the run.
    """
    written = profile.tls or TlsSettings()
    base = Path(profile.source).parent
    values: dict[str, str | None] = {}
    where: dict[str, tuple[str, str]] = {}
    for key in ("ca_file", "cert_file", "key_file", "server_name"):
        value = getattr(written, key)
        if value is not None:
            value = expand_env(value, profile.source, f"tls.{key}", env)
            if key != "server_name":
                value = str(Path(value) if Path(value).is_absolute() else base / value)
            where[key] = (profile.source, f"tls.{key}")
        values[key] = value
    for name, (key, option) in _CLI_TLS.items():
        value = getattr(overrides, name)
        if value is not None:
            values[key] = str(value)
            where[key] = (option, "")
    password = None
    if written.key_password is not None:
        password = expand_env(written.key_password, profile.source, "tls.key_password", env)
        where["key_password"] = (profile.source, "tls.key_password")
    if overrides.tls_key_password_env is not None:
        name = overrides.tls_key_password_env
        where["key_password"] = ("--tls-key-password-env", "")
        if name not in env:
            raise InputError(
                "--tls-key-password-env", "", f"environment variable {name} is not set"
            )
        password = env[name]
    if not any(values.values()):
        return None
    if values["key_file"] and not values["cert_file"]:
        raise InputError(*where["key_file"], "needs a certificate (cert_file) beside the key")
    for key in ("ca_file", "cert_file", "key_file"):
        path = values[key]
        if path is not None and not Path(path).is_file():
            raise InputError(*where[key], f"file not found: {path}")
    options = TlsOptions(
        ca_file=values["ca_file"],
        cert_file=values["cert_file"],
        key_file=values["key_file"],
        key_password=password,
        server_name=values["server_name"],
    )
    try:
        check_tls_files(options)
    except TlsFileError as exc:
        raise InputError(*_tls_where(exc.setting, where, profile.source), exc.message) from None
    return options


def _tls_where(setting: str, where: Mapping[str, tuple[str, str]], source: str) -> tuple[str, str]:
    """Where a TLS setting was given (its option, or its profile field), or where it would be
    given: the command line's option when the certificate came from there."""
    if setting in where:
        return where[setting]
    from_cli = where.get("cert_file", ("", ""))[0].startswith("--")
    option = {"key_file": "--tls-key", "key_password": "--tls-key-password-env"}.get(setting, "")
    return (option, "") if from_cli and option else (source, f"tls.{setting}")


def choose_client(asked: str, spec: RequestSpec) -> str:
    """HTTP/2 where the endpoint or the run asks for it; else the fast client for every
    request it can serve, unless aiohttp is asked for.

    aiohttp keeps what the fast client leaves out: redirects followed (``follow_redirects``),
    credentials in the URL (aiohttp turns them into Basic auth) and a host that is only
    known per request (a template).
    """
    if asked == "http2" or spec.http2:
        return "http2"
    if asked == "aiohttp" or spec.follow_redirects:
        return "aiohttp"
    if asked == "fast" or fast_client_serves(spec):
        return "fast"
    return "aiohttp"


def fast_client_serves(spec: RequestSpec) -> bool:
    url = spec.url_template.parts[0] if spec.url_template is not None else spec.url
    authority = urlsplit(url).netloc if "//" in url else ""
    if spec.url_template is not None and "/" not in url.split("//", 1)[-1]:
        return False  # a placeholder inside the host or port
    return bool(authority) and "@" not in authority


def plan_routed_hosts(plan: Plan) -> list[Host]:
    """Every host the plan sends to (target, absolute endpoint URLs, metrics), in order, with
    where its connections actually go (``--connect-to``, a proxy, a unix socket).

    Every host is known before the run: a host that would come from a ``{variable}`` is
    refused when the plan is built (``_check_host_is_literal``). The metrics scrape is not
    routed: it goes to its URL's own host.
    """
    urls = [plan.target, *(spec.url for spec in plan.requests)]
    hosts: list[Host] = []
    for url in urls:
        host = plan.routes.host(url)
        if host is not None and host not in hosts:
            hosts.append(host)
    if plan.metrics_url:
        host = Routes().host(plan.metrics_url)
        if host is not None and host not in hosts:
            hosts.append(host)
    return hosts


def plan_hosts(plan: Plan) -> list[str]:
    """The plan's hosts as the user should see them: ``name``, or ``name via address`` where
    the connection goes elsewhere."""
    return [host.label for host in plan_routed_hosts(plan)]


def remote_hosts(plan: Plan) -> list[str]:
    """The plan's hosts whose connections do not stay on this machine: judged by the address
    actually dialled (a name mapped to 127.0.0.1 is local; ``localhost`` mapped away is not)."""
    return [host.label for host in plan_routed_hosts(plan) if not host.local]


def resolve_routes(profile: Profile, overrides: Overrides, env: Mapping[str, str]) -> Routes:
    """The profile's routes with the command line's on top, ``${ENV}`` expanded, checked."""
    source = profile.source

    def value(name: str, option: str) -> tuple[Any, str, str]:
        given = getattr(overrides, name)
        if given is not None:
            return given, option, ""
        written = getattr(profile, name)
        if isinstance(written, tuple):
            written = tuple(
                expand_env(text, source, f"{name}[{i}]", env) for i, text in enumerate(written)
            )
        elif isinstance(written, str):
            written = expand_env(written, source, name, env)
        return written, source, name

    fields = {
        "connect_to": value("connect_to", "--connect-to"),
        "unix_socket": value("unix_socket", "--unix-socket"),
        "local_address": value("local_address", "--local-address"),
        "proxy": value("proxy", "--proxy"),
    }
    routes = Routes()
    for name, (given, where_source, where) in fields.items():
        if given:
            single = parse_routes(where_source, **{name: given}, where={name: where})
            routes = replace(
                routes,
                **{
                    key: getattr(single, key)
                    for key in (("http_proxy", "https_proxy") if name == "proxy" else (name,))
                },
            )
    from_env = (
        overrides.proxy_from_env if overrides.proxy_from_env is not None else profile.proxy_from_env
    )
    if from_env and not (routes.http_proxy or routes.https_proxy):
        http, https, no_proxy = proxies_from_env(env)
        routes = replace(routes, http_proxy=http, https_proxy=https, no_proxy=no_proxy)
    if routes.unix_socket and (routes.connect_to or routes.http_proxy or routes.https_proxy):
        raise InputError(
            source,
            "unix_socket",
            "a unix socket is where every connection goes: no connect_to or proxy beside it",
        )
    return routes


def _check_host_is_literal(source: str, where: str, url: str) -> None:
    """Where the load goes must be known before it is sent: the console asks about every
    host that is not this machine, and a headless run names them. A host built per request
    from an extracted value or a data row could be anything, so it is refused."""
    scheme = url.find("://")
    rest = url[scheme + 3 :] if scheme >= 0 else url
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if placeholders(authority):
        raise InputError(
            source,
            where,
            f"the host cannot come from a {{variable}} (got {describe(authority)}); stressdeck "
            "names every host before sending, so write the host itself (variables may go in "
            "the path, query, headers and body)",
        )
