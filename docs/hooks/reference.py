"""mkdocs hook: the reference pages rendered at build time from the code, so they cannot drift.

- ``<!-- profile-reference -->``: every key the profile parser accepts (its key sets in
  ``stressdeck.profiles.profile``), with the default its dataclass holds, and a meaning
  written here. A key the parser accepts without a meaning here, or a meaning for a key it
  no longer accepts, fails the build (and ``tests/test_docs.py``).
- ``<!-- results-reference -->``: every field of ``results.schema.json``, the schema
  generated from the results model.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The docs describe this tree's code, whatever stressdeck the interpreter has installed.
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from stressdeck.profiles import profile as model  # noqa: E402

# (type, meaning) per key path, in the order the reference shows them.
PROFILE_FIELDS: dict[str, tuple[str, str]] = {
    "name": ("string, required", "shown in the console and reports"),
    "description": ("string", "free text"),
    "base_url": ("http(s) URL", "required unless every endpoint has a full `url`"),
    "thresholds": (
        "list of strings",
        "pass/fail checks on the whole run ([Thresholds](profiles.md#thresholds))",
    ),
    "abort_on_fail": ("bool", "stop the run as soon as a threshold fails"),
    "abort_grace": ("duration", "don't abort before this much of the run has passed"),
    "insecure": ("bool", "skip TLS verification (off by default)"),
    "flow": (
        "list of endpoint names",
        "steps each user runs in order ([Chaining](profiles.md#chaining-flows-and-data-feeds))",
    ),
    "metrics_url": (
        "URL or `/path`",
        "the target's Prometheus endpoint ([The target's own metrics](profiles.md#the-targets-own-metrics))",
    ),
    "metrics": (
        "list of series",
        "the target's series to chart, e.g. `p95(http_request_duration_seconds)`; needs `metrics_url`",
    ),
    "client": (
        '`"auto"` `"fast"` `"aiohttp"` `"http2"`',
        "the HTTP client ([HTTP clients](clients-and-tls.md), [HTTP/2](http2.md))",
    ),
    "connect_to": (
        "list of `HOST:PORT:ADDR:PORT`",
        "connect elsewhere, keeping the URL, Host and TLS name, as curl's `--connect-to` ([Routes](routes.md))",
    ),
    "unix_socket": ("path", "send every request over this unix socket ([Routes](routes.md))"),
    "local_address": ("IP address", "the source address of every connection ([Routes](routes.md))"),
    "proxy": ("`http://HOST:PORT`", "an HTTP proxy; https through CONNECT ([Routes](routes.md))"),
    "cookies": ("bool", "a cookie jar per user, on by default ([Users with state](users.md#cookies))"),
    "setup": (
        "list of endpoint names",
        "run once by each user as it starts, kept out of the load ([Users with state](users.md#setup-and-teardown))",
    ),
    "teardown": (
        "list of endpoint names",
        "run once by each user as it retires ([Users with state](users.md#setup-and-teardown))",
    ),
    "hooks": (
        "`module:function`",
        "your Python function called on every request to change it ([Users with state](users.md#hooks))",
    ),
    "proxy_from_env": (
        "bool",
        "use `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` (off by default; [Routes](routes.md))",
    ),
    "defaults": ("table", "what every endpoint inherits"),
    "defaults.timeout": ("duration", "per request"),
    "defaults.headers": ("table of strings", "sent with every request"),
    "defaults.compress": (
        "bool",
        "ask for gzip/deflate answers; checks and extracts read the decoded body ([HTTP clients](clients.md))",
    ),
    "defaults.follow_redirects": ("bool", "follow 3xx answers (false: a 3xx is counted as it is)"),
    "load": ("table", "the default load; the command line's options override it"),
    "load.model": (
        '`"closed"` or `"open"`',
        "[Load models](load-models.md); unset: open when the load gives a `rate` and no `users`, else closed",
    ),
    "load.users": ("positive integer", "closed model: virtual users"),
    "load.rate": ("positive number", "open model: requests per second"),
    "load.max_in_flight": (
        "positive integer",
        "open model, all processes together: waiting plus on the wire; beyond it requests are dropped (unset: 10 s worth of the highest rate the profile asks, stages and presets included, at most 10,000)",
    ),
    "load.connections": (
        "positive integer",
        "open model, all processes together: keep-alive connections (unset: 64)",
    ),
    "load.duration": ("duration", "when to stop (this or `load.requests`; neither: 30 s)"),
    "load.requests": ("positive integer", "stop after this many requests"),
    "load.stages": ("list of `{duration, target}`", "linear ramps"),
    "load.preset": ("a preset's name", "a named load shape (`stressdeck presets`)"),
    "endpoints": ("non-empty list of tables", "the requests to send"),
    "endpoints[].name": ("string, unique", "shown in the summary, console and reports"),
    "endpoints[].method": ("GET POST PUT PATCH DELETE HEAD OPTIONS", "the HTTP method"),
    "endpoints[].path": ("`/path`", "joined to `base_url` (this or `url`)"),
    "endpoints[].url": ("a full URL", "instead of `path`"),
    "endpoints[].headers": ("table of strings", "over `defaults.headers`"),
    "endpoints[].query": ("table of strings", "query parameters"),
    "endpoints[].json": ("any JSON value", "the body, sent as JSON (this or `body`)"),
    "endpoints[].body": ("string", "the body as it is"),
    "endpoints[].weight": ("positive number", "share of the mix"),
    "endpoints[].expect": ("list of status codes", "accepted statuses (empty: any < 400)"),
    "endpoints[].think": ("duration", "pause after the request (closed model)"),
    "endpoints[].timeout": ("duration", "overrides `defaults.timeout`"),
    "endpoints[].thresholds": ("list of strings", "checked on this endpoint only"),
    "endpoints[].extract": (
        "table name → extractor",
        "values for later requests ([Chaining](profiles.md#chaining-flows-and-data-feeds))",
    ),
    "endpoints[].follow_redirects": ("bool", "overrides `defaults.follow_redirects`"),
    "endpoints[].compress": (
        "bool",
        "ask for gzip/deflate answers, over `defaults.compress` ([HTTP clients](clients.md))",
    ),
    "endpoints[].http2": ("bool", "send this endpoint over HTTP/2 ([HTTP/2](http2.md))"),
    "endpoints[].hooks": ("`module:function`", "this endpoint's own hook, over the profile's"),
    "endpoints[].checks": (
        "list of strings",
        "assertions on each response ([Response checks](profiles.md#response-checks))",
    ),
    "tls": ("table", "[TLS](clients-and-tls.md#tls); paths relative to the profile"),
    "tls.ca_file": ("file path", "verify with this CA bundle (unset: the system's)"),
    "tls.cert_file": ("file path", "mutual TLS: the client certificate"),
    "tls.key_file": ("file path", "its key"),
    "tls.key_password": ("`${ENV}` reference", "the key's passphrase; never the secret itself"),
    "tls.server_name": ("string", "verify the certificate for this name (the URL holds an IP)"),
    "data": ("file name or table", "rows fed to requests as `{row.COLUMN}`"),
    "data.file": ("`.csv` or `.jsonl` path", "relative to the profile"),
    "data.mode": ('`"cycle"` or `"stop"`', "`stop` ends the run when the rows run out"),
    "data.per": (
        '`"iteration"` or `"user"`',
        "`user` gives each virtual user one row for its whole life",
    ),
}

# The tables of the format: the key set the parser accepts and the dataclass holding defaults.
_TABLES: tuple[tuple[str, Any, Any], ...] = (
    ("", model._TOP_KEYS, model.Profile),
    ("defaults.", model._DEFAULT_KEYS, model.Profile),
    ("load.", model._LOAD_KEYS, model.LoadSpec),
    ("endpoints[].", model._ENDPOINT_KEYS, model.Endpoint),
    ("tls.", model._TLS_KEYS, model.TlsSettings),
    ("data.", model._DATA_KEYS, model.DataSpec),
)


def accepted_paths() -> set[str]:
    """Every key path the profile parser accepts."""
    return {prefix + key for prefix, keys, _ in _TABLES for key in keys}


def drift() -> list[str]:
    """What the reference and the parser disagree on (empty when they agree)."""
    accepted, described = accepted_paths(), set(PROFILE_FIELDS)
    problems = [
        f"profile key `{p}` has no meaning in docs/hooks/reference.py"
        for p in sorted(accepted - described)
    ]
    problems += [
        f"docs/hooks/reference.py describes `{p}`, which profiles no longer accept"
        for p in sorted(described - accepted)
    ]
    return problems


def _default(path: str) -> str:
    for prefix, keys, holder in _TABLES:
        key = path[len(prefix) :]
        if path.startswith(prefix) and key in keys and "." not in key and "[" not in key:
            for f in dataclasses.fields(holder):
                if f.name == key and f.default is not dataclasses.MISSING:
                    value = f.default
                    if value is None or value == () or dataclasses.is_dataclass(value):
                        return ""
                    if isinstance(value, bool):
                        return f"`{str(value).lower()}`"
                    if isinstance(value, str):
                        return f'`"{value}"`' if value else ""
                    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"
            return ""
    return ""


def render_profile_reference() -> str:
    problems = drift()
    if problems:
        raise RuntimeError("; ".join(problems))
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for path, (kind, meaning) in PROFILE_FIELDS.items():
        rows.append(f"| `{path}` | {kind} | {_default(path)} | {meaning} |")
    return "\n".join(rows) + "\n"


def _schema_rows(
    node: dict[str, Any], path: str, rows: list[str], seen: dict[str, str], optional: bool = False
) -> None:
    kind = node.get("type")
    if kind is None and "anyOf" in node:
        kind = " or ".join(str(option.get("type", "?")) for option in node["anyOf"])
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind is None and "enum" in node:
        kind = " or ".join(f'`"{value}"`' for value in node["enum"])
    shape = json.dumps(node, sort_keys=True)
    if path and shape in seen and node.get("properties"):
        rows.append(f"| `{path}` | {kind} | the same fields as `{seen[shape]}` |")
        return
    seen.setdefault(shape, path)
    if path:
        note = node.get("description", "") or ("optional" if optional else "")
        rows.append(f"| `{path}` | {kind} | {note} |")
    required = set(node.get("required", node.get("properties", {})))
    for key, child in node.get("properties", {}).items():
        name = f"{path}.{key}" if path else key
        _schema_rows(child, name, rows, seen, optional=key not in required)
    if isinstance(node.get("items"), dict):
        _schema_rows(node["items"], f"{path}[]", rows, seen)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        _schema_rows(extra, f"{path}.<name>", rows, seen)


def render_results_reference() -> str:
    schema = json.loads((ROOT / "results.schema.json").read_text(encoding="utf-8"))
    rows = ["| field | type | note |", "|---|---|---|"]
    _schema_rows(schema, "", rows, {})
    return "\n".join(rows) + "\n"


_MARKERS = {
    "<!-- profile-reference -->": render_profile_reference,
    "<!-- results-reference -->": render_results_reference,
}


def on_page_markdown(markdown: str, **_: Any) -> str:
    for marker, render in _MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown
