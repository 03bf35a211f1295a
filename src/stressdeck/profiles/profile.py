"""Profiles: the endpoints to hit and the default load, read from TOML or JSON.

One schema for both formats; the file extension decides the parser. Every problem is
reported as one ``InputError`` naming the file, the field path and what was expected.
"""

from __future__ import annotations

import csv
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stressdeck.core.errors import InputError, describe
from stressdeck.core.fields import MAX_SECONDS
from stressdeck.core.files import open_regular, read_regular
from stressdeck.core.hosts import check_url
from stressdeck.core.units import is_finite, parse_duration
from stressdeck.observe.metrics import parse_series
from stressdeck.profiles.chain import RANDOM, Extractor, iter_rows, parse_extractor, placeholders
from stressdeck.profiles.checks import SYNTAX, Check, parse_check
from stressdeck.profiles.presets import PRESETS, Stage
from stressdeck.profiles.routes import parse_routes
from stressdeck.profiles.thresholds import Threshold, parse_threshold

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MODELS = ("closed", "open")
SUFFIXES = (".toml", ".json")  # of profiles and sessions: the extension picks the format
# Which HTTP client sends: "auto" gives the fast one every endpoint it can serve.
CLIENTS = ("auto", "fast", "aiohttp", "http2")


@dataclass(frozen=True)
class LoadSpec:
    model: str = "closed"
    users: int = 10
    rate: float | None = None
    max_in_flight: int | None = None  # open model, the total across processes
    connections: int | None = None  # open model, the total across processes
    duration: float | None = None
    requests: int | None = None
    stages: tuple[Stage, ...] = ()
    preset: str | None = None


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str = "GET"
    path: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    body: str | None = None
    weight: float = 1.0
    expect: tuple[int, ...] = ()
    think: float = 0.0
    timeout: float | None = None
    thresholds: tuple[Threshold, ...] = ()
    extract: tuple[Extractor, ...] = ()
    follow_redirects: bool | None = None  # None: the profile's default
    checks: tuple[Check, ...] = ()
    http2: bool = False  # sent over HTTP/2 (ALPN over TLS, prior knowledge over plain http)
    hooks: str | None = None  # "module:function" (profiles/hooks.py); None: the profile's
    compress: bool | None = None  # ask for gzip/deflate answers; None: the profile's default


@dataclass(frozen=True)
class DataSpec:
    """A data file whose rows feed ``{row.NAME}``: one row per iteration, or one per user.

    The rows stay in the file: it was read through once at load to check it, and each
    worker reads the rows it needs as it goes (``chain.DataFeed``).
    """

    file: str  # as written in the profile
    path: str  # where it is, relative paths resolved against the profile's directory
    columns: tuple[str, ...]
    rows: int  # counted at load
    mode: str = "cycle"  # or "stop": the run ends when the rows run out
    per: str = "iteration"  # or "user"


@dataclass(frozen=True)
class TlsSettings:
    """``[tls]`` as written: file paths relative to the profile, the passphrase a ``${ENV}``."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    key_password: str | None = None  # always a ${ENV_VAR} reference, never the secret
    server_name: str | None = None


@dataclass(frozen=True)
class Profile:
    source: str
    name: str
    endpoints: tuple[Endpoint, ...]
    base_url: str | None = None
    description: str = ""
    timeout: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    follow_redirects: bool = False
    compress: bool = False  # [defaults] compress: ask every endpoint's answers compressed
    load: LoadSpec = LoadSpec()
    thresholds: tuple[Threshold, ...] = ()
    abort_on_fail: bool = False
    abort_grace: float = 0.0
    insecure: bool = False
    flow: tuple[str, ...] = ()
    data: DataSpec | None = None
    metrics_url: str | None = None
    # The target's series to chart, e.g. "p95(http_request_duration_seconds)".
    metrics: tuple[str, ...] = ()
    tls: TlsSettings | None = None
    client: str = "auto"
    # Where connections go (profiles/routes.py), as written: ``${ENV}`` is expanded by the plan.
    connect_to: tuple[str, ...] = ()
    unix_socket: str | None = None
    local_address: str | None = None
    proxy: str | None = None
    proxy_from_env: bool = False
    hooks: str | None = None  # "module:function" called on every request (profiles/hooks.py)
    cookies: bool = True  # a cookie jar per user (engine/users.py)
    # Endpoints each user runs once when it starts, and once when it retires: not in the mix.
    setup: tuple[str, ...] = ()
    teardown: tuple[str, ...] = ()
    # The document exactly as written (``${ENV}`` references unexpanded), for sessions.
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile file; raises InputError on any problem."""
    source = str(path)
    document = read_document(source)
    return parse_profile(document, source)


def read_document(source: str, kind: str = "profile") -> dict[str, Any]:
    """Parse a .toml or .json file into a dict, turning every failure into one InputError.

    Only a regular file within the cap for ``kind`` (profile or session) is read; a UTF-8
    byte order mark, as some Windows editors write, is dropped.
    """
    suffix = Path(source).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(source, "", "expected a .toml or .json file")
    raw = read_regular(source, kind)
    try:
        text = raw.decode("utf-8-sig")
        document = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except UnicodeDecodeError:
        raise InputError(source, "", "expected UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(source, "", f"invalid TOML ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(source, "", f"invalid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise InputError(source, "", "document nested too deeply") from None
    except ValueError as exc:  # an integer past Python's 4,300-digit conversion limit
        raise InputError(
            source, "", f"invalid {suffix[1:].upper()} ({huge_integer(exc)})"
        ) from None
    if not isinstance(document, dict):
        raise InputError(source, "", f"expected a table at the top level, got {describe(document)}")
    return document


def huge_integer(exc: ValueError) -> str:
    """Python's own message tells the user to call ``sys.set_int_max_str_digits()``: say
    what is wrong with the file instead."""
    digits = re.search(r"has (\d+) digits", str(exc))
    shown = f" ({digits.group(1)} digits)" if digits else ""
    return f"an integer too long{shown}; expected at most 4300 digits"


class _Fields:
    """Typed field access on one table of a document, with errors naming the field path."""

    def __init__(self, source: str, table: Mapping[str, Any], prefix: str, allowed: set[str]):
        self.source = source
        self.table = table
        self.prefix = prefix
        for key in table:
            if key not in allowed:
                raise InputError(source, self.path(str(key)), "unknown key")

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def fail(self, key: str, expected: str) -> InputError:
        return InputError(
            self.source, self.path(key), f"expected {expected}, got {describe(self.table[key])}"
        )

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        if key not in self.table:
            if required:
                raise InputError(self.source, self.path(key), "required field is missing")
            return default
        value = self.table[key]
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.fail(key, "a non-empty string" if required else "a string")
        return value

    def number(
        self, key: str, default: float | None = None, *, integer: bool = False
    ) -> float | None:
        if key not in self.table:
            return default
        value = self.table[key]
        kind = "a positive whole number" if integer else "a positive number"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.fail(key, kind)
        if integer and (isinstance(value, float) and not value.is_integer()):
            raise self.fail(key, kind)
        if not is_finite(value):
            raise self.fail(key, kind)
        return value

    def duration(
        self, key: str, default: float | None = None, *, positive: bool = True
    ) -> float | None:
        if key not in self.table:
            return default
        seconds = parse_duration(self.table[key])
        if seconds is None or seconds < 0 or (positive and seconds == 0) or seconds != seconds:
            raise self.fail(key, 'a duration like "500ms", "30s" or "2m"')
        if seconds > MAX_SECONDS:  # as a session reads it back: a year at most
            raise self.fail(key, f"a duration up to {MAX_SECONDS / 86400:.0f} days")
        return seconds

    def boolean(self, key: str, default: bool = False) -> bool:
        if key not in self.table:
            return default
        if not isinstance(self.table[key], bool):
            raise self.fail(key, "true or false")
        return bool(self.table[key])

    def table_of_strings(self, key: str) -> dict[str, str]:
        if key not in self.table:
            return {}
        value = self.table[key]
        if not isinstance(value, dict):
            raise self.fail(key, "a table of strings")
        result: dict[str, str] = {}
        for name, item in value.items():
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise InputError(
                    self.source,
                    f"{self.path(key)}.{name}",
                    f"expected a string, got {describe(item)}",
                )
            result[str(name)] = item if isinstance(item, str) else str(item)
        return result

    def headers(self, key: str) -> dict[str, str]:
        """A table of header names and values that can go on the wire as they are."""
        headers = self.table_of_strings(key)
        for name, value in headers.items():
            problem = header_problem(name, value)
            if problem is not None:
                raise InputError(self.source, f"{self.path(key)}.{name}", problem)
        return headers

    def thresholds(self, key: str) -> tuple[Threshold, ...]:
        if key not in self.table:
            return ()
        value = self.table[key]
        if not isinstance(value, list):
            raise self.fail(key, 'a list of expressions like "p95 < 200ms"')
        parsed = []
        for index, expr in enumerate(value):
            where = f"{self.path(key)}[{index}]"
            if not isinstance(expr, str):
                raise InputError(
                    self.source,
                    where,
                    f'expected an expression like "p95 < 200ms", got {describe(expr)}',
                )
            parsed.append(parse_threshold(expr, self.source, where))
        return tuple(parsed)

    def sub_table(self, key: str) -> Mapping[str, Any]:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "a table")
        return value


# RFC 9110 token characters: what a header name may hold.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def header_problem(name: str, value: str) -> str | None:
    """Why a header cannot be sent as written, or None. CR or LF would end the header
    early (and start another one: injection); aiohttp refuses them only at send time,
    which turns every request of a run into an error."""
    if not _HEADER_NAME.fullmatch(name):
        return "expected a header name of letters, digits and -!#$%&'*+.^_`|~ (no spaces, colons, CR or LF)"
    if "\r" in value or "\n" in value or "\0" in value:
        return "expected a header value without CR or LF (or NUL)"
    return None


_TOP_KEYS = {
    "name",
    "description",
    "base_url",
    "defaults",
    "load",
    "endpoints",
    "thresholds",
    "abort_on_fail",
    "abort_grace",
    "insecure",
    "flow",
    "data",
    "metrics_url",
    "metrics",
    "tls",
    "client",
    "connect_to",
    "unix_socket",
    "local_address",
    "proxy",
    "proxy_from_env",
    "hooks",
    "cookies",
    "setup",
    "teardown",
}
_DEFAULT_KEYS = {"timeout", "headers", "follow_redirects", "compress"}
_LOAD_KEYS = {
    "model",
    "users",
    "rate",
    "max_in_flight",
    "connections",
    "duration",
    "requests",
    "stages",
    "preset",
}
_ENDPOINT_KEYS = {
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
    "timeout",
    "thresholds",
    "extract",
    "follow_redirects",
    "checks",
    "http2",
    "hooks",
    "compress",
}


def parse_profile(document: Mapping[str, Any], source: str) -> Profile:
    """Validate a parsed document into a Profile."""
    top = _Fields(source, document, "", _TOP_KEYS)
    name = top.string("name", required=True)
    base_url = top.string("base_url")
    if base_url is not None:
        check_url(source, "base_url", base_url)
    defaults = _Fields(source, top.sub_table("defaults"), "defaults", _DEFAULT_KEYS)
    timeout = defaults.duration("timeout", 10.0)
    headers = defaults.headers("headers")
    endpoints = _parse_endpoints(source, document, base_url)
    flow = _parse_flow(source, document.get("flow"), endpoints)
    data = _parse_data(source, document.get("data"))
    _check_variables(source, document, endpoints, data)
    metrics_url = top.string("metrics_url")
    if metrics_url is not None and not metrics_url.startswith("/"):
        check_url(source, "metrics_url", metrics_url)  # "/metrics": on the target itself
    metrics = _parse_metric_series(source, document.get("metrics"))
    if metrics and metrics_url is None:
        raise InputError(source, "metrics", "needs metrics_url: the Prometheus endpoint to scrape")
    return Profile(
        source=source,
        name=name or "",
        description=top.string("description", "") or "",
        base_url=base_url,
        timeout=timeout or 10.0,
        headers=headers,
        follow_redirects=defaults.boolean("follow_redirects"),
        compress=defaults.boolean("compress"),
        endpoints=endpoints,
        load=_parse_load(source, top.sub_table("load")),
        thresholds=top.thresholds("thresholds"),
        abort_on_fail=top.boolean("abort_on_fail"),
        abort_grace=top.duration("abort_grace", 0.0, positive=False) or 0.0,
        insecure=top.boolean("insecure"),
        flow=flow,
        data=data,
        metrics_url=metrics_url,
        metrics=metrics,
        tls=parse_tls(source, top.sub_table("tls")),
        client=_parse_client(source, top.string("client", "auto")),
        **_parse_routes(source, top),
        hooks=_hook_name(top, "hooks"),
        cookies=top.boolean("cookies", True),
        **_parse_user_steps(source, document, endpoints, flow),
        document=dict(document),
    )


def _hook_name(fields: _Fields, key: str) -> str | None:
    """``module:function``, checked for its form only: the module is imported when a run is
    planned, never when a profile is merely read (to view or report on it)."""
    text = fields.string(key)
    if text is None:
        return None
    module, _, name = text.partition(":")
    if not (module and name and all(p.isidentifier() for p in (*module.split("."), name))):
        raise fields.fail(key, '"module:function", e.g. "signing:sign"')
    return text


def _parse_routes(source: str, top: _Fields) -> dict[str, Any]:
    """The routing fields, checked here where they hold no ``${ENV}`` (the plan expands those)."""
    raw = top.table.get("connect_to", [])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise top.fail("connect_to", 'a list like ["api.example.com:443:127.0.0.1:8443"]')
    fields = {
        "connect_to": tuple(raw),
        "unix_socket": top.string("unix_socket"),
        "local_address": top.string("local_address"),
        "proxy": top.string("proxy"),
    }
    literal: dict[str, Any] = {
        key: value
        for key, value in fields.items()
        if value
        and not any("${" in text for text in (value if isinstance(value, tuple) else (value,)))
    }
    parse_routes(source, **literal)
    return {**fields, "proxy_from_env": top.boolean("proxy_from_env")}


# -- TLS and the client -----------------------------------------------------------------------

_TLS_KEYS = ("ca_file", "cert_file", "key_file", "key_password", "server_name")


def parse_tls(source: str, table: Mapping[str, Any], prefix: str = "tls") -> TlsSettings | None:
    """``[tls]``: a CA bundle, a client certificate and key, a server name to verify."""
    if not table:
        return None
    fields = _Fields(source, table, prefix, set(_TLS_KEYS))
    values: dict[str, str | None] = {}
    for key in _TLS_KEYS:
        value = fields.string(key)
        if value is not None and not value.strip():
            raise fields.fail(key, "a non-empty string")
        values[key] = value
    settings = TlsSettings(**values)
    password = settings.key_password
    if password is not None and not (password.startswith("${") and password.endswith("}")):
        raise InputError(
            source,
            fields.path("key_password"),
            "expected a ${ENV_VAR} reference: a passphrase is never written in a profile",
        )
    if settings.key_file and not settings.cert_file:
        raise InputError(source, fields.path("key_file"), "needs cert_file, the certificate")
    if password is not None and not settings.cert_file:
        raise InputError(source, fields.path("key_password"), "needs cert_file and key_file")
    return settings


def _parse_client(source: str, client: str | None) -> str:
    if client is None or client not in CLIENTS:
        raise InputError(source, "client", "expected one of " + ", ".join(CLIENTS))
    return client


def _parse_metric_series(source: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InputError(
            source, "metrics", f'expected a list of series like "p95(name)", got {describe(value)}'
        )
    series = []
    for index, text in enumerate(value):
        try:
            series.append(parse_series(text, source).text)
        except InputError as exc:
            raise InputError(source, f"metrics[{index}]", exc.message) from None
    return tuple(series)


def _parse_load(source: str, table: Mapping[str, Any]) -> LoadSpec:
    load = _Fields(source, table, "load", _LOAD_KEYS)
    # A rate without a model is the open model's, as --rate is: in the closed model a rate
    # would be ignored, and users sent unthrottled where a gentle rate was meant.
    implied = "open" if "rate" in table and "users" not in table else "closed"
    model = load.string("model", implied)
    if model not in MODELS:
        raise load.fail("model", '"closed" or "open"')
    if "rate" in table and model == "closed":
        # The closed model sends as fast as its users get answers: a rate beside it would
        # be ignored, and what was meant as a gentle rate sent unthrottled.
        given = (
            "the closed model takes no rate"
            if "model" in table
            else "a rate is the open model's and users the closed model's"
        )
        raise InputError(source, "load.rate", f'{given}; set model = "open" or remove rate')
    preset = load.string("preset")
    if preset is not None and preset not in PRESETS:
        raise load.fail("preset", "one of " + ", ".join(PRESETS))
    if "duration" in table and "requests" in table:
        raise InputError(
            source, "load.requests", "expected either load.duration or load.requests, not both"
        )
    rate = load.number("rate")
    users = load.number("users", 10, integer=True)
    max_in_flight = load.number("max_in_flight", integer=True)
    connections = load.number("connections", integer=True)
    requests = load.number("requests", integer=True)
    return LoadSpec(
        model=model or "closed",
        users=int(users or 10),
        rate=float(rate) if rate is not None else None,
        max_in_flight=int(max_in_flight) if max_in_flight is not None else None,
        connections=int(connections) if connections is not None else None,
        duration=load.duration("duration"),
        requests=int(requests) if requests is not None else None,
        stages=_parse_stages(source, table.get("stages")),
        preset=preset,
    )


def _parse_stages(source: str, value: Any) -> tuple[Stage, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise InputError(
            source,
            "load.stages",
            f'expected a list like [{{duration = "30s", target = 50}}], got {describe(value)}',
        )
    stages = []
    for index, item in enumerate(value):
        prefix = f"load.stages[{index}]"
        if not isinstance(item, dict):
            raise InputError(
                source, prefix, f"expected a table with duration and target, got {describe(item)}"
            )
        fields = _Fields(source, item, prefix, {"duration", "target"})
        duration = fields.duration("duration")
        if duration is None:
            raise InputError(source, f"{prefix}.duration", "required field is missing")
        if "target" not in item:
            raise InputError(source, f"{prefix}.target", "required field is missing")
        target = item["target"]
        if (
            isinstance(target, bool)
            or not isinstance(target, (int, float))
            or not is_finite(target)
            or target < 0
        ):
            raise fields.fail("target", "a number >= 0")
        stages.append(Stage(duration=duration, target=float(target)))
    return tuple(stages)


# The most endpoints a profile may have. A tick costs only what was sent in it, but each
# endpoint is read, prepared and kept: 100,000 took 13 s to read and check, 25 s to a 4 s
# run's end, 473 MiB (benchmarks/endpoints.py, a 2-core machine under load).
MAX_ENDPOINTS = 100_000


def _parse_endpoints(
    source: str, document: Mapping[str, Any], base_url: str | None
) -> tuple[Endpoint, ...]:
    raw = document.get("endpoints")
    if raw is None:
        raise InputError(
            source, "endpoints", "required field is missing (expected at least one endpoint)"
        )
    if not isinstance(raw, list) or not raw:
        raise InputError(
            source, "endpoints", f"expected a non-empty list of tables, got {describe(raw)}"
        )
    if len(raw) > MAX_ENDPOINTS:
        raise InputError(
            source,
            "endpoints",
            f"expected at most {MAX_ENDPOINTS:,} endpoints, got {len(raw):,} (each costs "
            "start-up time and memory; split the profile)",
        )
    endpoints: list[Endpoint] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        prefix = f"endpoints[{index}]"
        if not isinstance(item, dict):
            raise InputError(source, prefix, f"expected a table, got {describe(item)}")
        endpoint = _parse_endpoint(source, item, prefix, base_url)
        if endpoint.name in seen:
            raise InputError(
                source,
                f"{prefix}.name",
                f"expected a unique name, {describe(endpoint.name)} is used twice",
            )
        if endpoint.name.lower() == "total":  # the whole run's row, in summaries and histograms
            raise InputError(
                source, f"{prefix}.name", 'expected another name, "total" is the whole run\'s'
            )
        seen.add(endpoint.name)
        endpoints.append(endpoint)
    return tuple(endpoints)


def _parse_endpoint(
    source: str, item: Mapping[str, Any], prefix: str, base_url: str | None
) -> Endpoint:
    fields = _Fields(source, item, prefix, _ENDPOINT_KEYS)
    method = fields.string("method", "GET") or "GET"
    if method.upper() not in METHODS:
        raise fields.fail("method", "one of " + ", ".join(METHODS))
    path = fields.string("path")
    url = fields.string("url")
    if path is not None and url is not None:
        raise InputError(source, f"{prefix}.url", "expected either path or url, not both")
    if url is not None:
        check_url(source, f"{prefix}.url", url)
    elif path is None:
        raise InputError(
            source, f"{prefix}.path", "required field is missing (give path, or a full url)"
        )
    elif base_url is None:
        raise InputError(source, "base_url", f"required when {prefix} gives only a path")
    elif not path.startswith("/") and "${" not in path[:2]:
        raise fields.fail("path", 'a path starting with "/"')
    if "json" in item and "body" in item:
        raise InputError(source, f"{prefix}.body", "expected either json or body, not both")
    body = fields.string("body")
    name = fields.string("name", required=True) or ""
    return Endpoint(
        name=name,
        method=method.upper(),
        path=path,
        url=url,
        headers=fields.headers("headers"),
        query=fields.table_of_strings("query"),
        json=item.get("json"),
        body=body,
        weight=float(fields.number("weight", 1.0) or 1.0),
        expect=_parse_expect(fields),
        think=fields.duration("think", 0.0, positive=False) or 0.0,
        timeout=fields.duration("timeout"),
        thresholds=fields.thresholds("thresholds"),
        extract=_parse_extract(source, item.get("extract"), f"{prefix}.extract"),
        follow_redirects=fields.boolean("follow_redirects") if "follow_redirects" in item else None,
        checks=_parse_checks(source, item.get("checks"), f"{prefix}.checks"),
        http2=fields.boolean("http2"),
        hooks=_hook_name(fields, "hooks"),
        compress=fields.boolean("compress") if "compress" in item else None,
    )


def _parse_extract(source: str, value: Any, where: str) -> tuple[Extractor, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InputError(
            source, where, f'expected a table like {{ id = "$.id" }}, got {describe(value)}'
        )
    extractors = []
    for variable, expression in value.items():
        if not isinstance(expression, str):
            raise InputError(
                source,
                f"{where}.{variable}",
                f'expected "$.json.path", "header:NAME" or "regex:PATTERN", got {describe(expression)}',
            )
        try:
            extractors.append(parse_extractor(str(variable), expression))
        except ValueError as exc:
            raise InputError(
                source, f"{where}.{variable}", f"{exc}, got {describe(expression)}"
            ) from None
    return tuple(extractors)


def _parse_checks(source: str, value: Any, where: str) -> tuple[Check, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InputError(
            source,
            where,
            f'expected a list of checks like ["status == 200"], got {describe(value)}',
        )
    checks = []
    for index, text in enumerate(value):
        if not isinstance(text, str):
            raise InputError(
                source, f"{where}[{index}]", f"expected a check like {SYNTAX}, got {describe(text)}"
            )
        try:
            checks.append(parse_check(text))
        except ValueError as exc:
            raise InputError(source, f"{where}[{index}]", f"{exc}, got {describe(text)}") from None
    return tuple(checks)


def _parse_steps(
    source: str, value: Any, endpoints: tuple[Endpoint, ...], flow: tuple[str, ...], key: str
) -> tuple[str, ...]:
    """``setup`` / ``teardown``: endpoint names run once per user, kept out of the load."""
    if value is None:
        return ()
    steps = _parse_flow(source, value, endpoints, key)
    for index, step in enumerate(steps):
        if step in flow:
            raise InputError(
                source,
                f"{key}[{index}]",
                f"{describe(step)} is in flow too; expected it in one only",
            )
    return steps


def _parse_user_steps(
    source: str, document: Mapping[str, Any], endpoints: tuple[Endpoint, ...], flow: tuple[str, ...]
) -> dict[str, Any]:
    steps = {
        key: _parse_steps(source, document.get(key), endpoints, flow, key)
        for key in ("setup", "teardown")
    }
    if not {ep.name for ep in endpoints} - {*steps["setup"], *steps["teardown"]}:
        raise InputError(source, "setup", "expected at least one endpoint left for the load itself")
    return steps


def _parse_flow(
    source: str, value: Any, endpoints: tuple[Endpoint, ...], key: str = "flow"
) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(step, str) for step in value):
        raise InputError(
            source, key, f"expected a non-empty list of endpoint names, got {describe(value)}"
        )
    names = {endpoint.name for endpoint in endpoints}
    for index, step in enumerate(value):
        if step not in names:
            raise InputError(
                source, f"{key}[{index}]", f"expected the name of an endpoint, got {describe(step)}"
            )
    return tuple(value)


_DATA_KEYS = ("file", "mode", "per")


def _parse_data(source: str, value: Any) -> DataSpec | None:
    if value is None:
        return None
    table = {"file": value} if isinstance(value, str) else value
    if not isinstance(table, dict):
        raise InputError(
            source,
            "data",
            f'expected a file name or a table {{ file = "users.csv" }}, got {describe(value)}',
        )
    fields = _Fields(source, table, "data", set(_DATA_KEYS))
    file = fields.string("file", required=True) or ""
    mode = fields.string("mode", "cycle")
    if mode not in ("cycle", "stop"):
        raise fields.fail("mode", '"cycle" or "stop"')
    per = fields.string("per", "iteration")
    if per not in ("iteration", "user"):
        raise fields.fail("per", '"iteration" or "user"')
    path = Path(file) if Path(file).is_absolute() else Path(source).parent / file
    if path.suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
        raise InputError(
            source, "data.file", f"expected a .csv or .jsonl file, got {describe(file)}"
        )
    columns, count = _check_data_file(source, path)
    return DataSpec(
        file=file,
        path=str(path),
        columns=columns,
        rows=count,
        mode=mode or "cycle",
        per=per or "iteration",
    )


def _check_data_file(source: str, path: Path) -> tuple[tuple[str, ...], int]:
    """Read the data file through once, row by row: its columns (of the first row) and rows."""
    shown = describe(str(path))
    columns: tuple[str, ...] = ()
    count = 0
    try:
        with open_regular(path, "data") as handle:
            for row in iter_rows(path.name, handle):
                if not count:
                    columns = tuple(row)
                count += 1
    except InputError as exc:  # not a regular file, too big: said of the data file
        if exc.message == "file not found":
            raise InputError(source, "data.file", f"file not found: {shown}") from None
        raise InputError(source, "data.file", f"{shown}: {exc.message}") from None
    except (OSError, UnicodeDecodeError, ValueError, csv.Error, RecursionError) as exc:
        raise InputError(source, "data.file", f"cannot read {shown} ({exc})") from None
    if not count:
        raise InputError(source, "data.file", f"expected at least one row in {shown}")
    return columns, count


def _check_variables(
    source: str, document: Mapping[str, Any], endpoints: tuple[Endpoint, ...], data: DataSpec | None
) -> None:
    """A ``{name}`` nobody provides is a typo: say so at load, not as skips at run time."""
    known = {extractor.variable for endpoint in endpoints for extractor in endpoint.extract}
    columns = set(data.columns) if data else set()
    for index, endpoint in enumerate(endpoints):
        raw = document["endpoints"][index]
        texts = [("path", endpoint.path or ""), ("url", endpoint.url or "")]
        texts += [(f"headers.{k}", v) for k, v in endpoint.headers.items()]
        texts += [(f"query.{k}", v) for k, v in endpoint.query.items()]
        texts += [("body", endpoint.body or "")]
        if "json" in raw:
            texts.append(("json", _json_text(endpoint.json)))
        for where, text in texts:
            for name in placeholders(text):
                if name.startswith("row."):
                    if name[4:] not in columns:
                        expected = (
                            f"a column of the data file ({', '.join(sorted(columns))})"
                            if data
                            else 'a data file (data = "rows.csv")'
                        )
                        raise InputError(
                            source, f"endpoints[{index}].{where}", f"{{{name}}} needs {expected}"
                        )
                elif name.startswith("random."):
                    if name not in RANDOM:
                        raise InputError(
                            source,
                            f"endpoints[{index}].{where}",
                            f"unknown helper {{{name}}}; expected one of {', '.join('{' + k + '}' for k in RANDOM)}",
                        )
                elif name not in known:
                    raise InputError(
                        source,
                        f"endpoints[{index}].{where}",
                        f"unknown variable {{{name}}}; expected one that an endpoint extracts",
                    )


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _parse_expect(fields: _Fields) -> tuple[int, ...]:
    if "expect" not in fields.table:
        return ()
    value = fields.table["expect"]
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(
            isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599
            for code in value
        )
    ):
        raise fields.fail("expect", "a list of HTTP status codes (100-599)")
    return tuple(value)
