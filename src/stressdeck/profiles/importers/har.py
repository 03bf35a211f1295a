"""A profile from a HAR 1.2 recording (browser dev tools, proxies): one endpoint per request kind.

Requests are grouped by method and URL without the query; the group's size becomes the
endpoint's weight, so the profile replays the recorded mix. Only the busiest origin is
imported: a browser recording also holds CDNs and analytics, which are not the target.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from stressdeck.core.errors import InputError, describe
from stressdeck.profiles.importers.common import (
    DROPPED_HEADERS,
    Secrets,
    body_fields,
    header_value,
    place_query,
    profile_document,
    read_json_file,
    split_url,
    unique_name,
)
from stressdeck.profiles.profile import METHODS


def _table(source: str, where: str, value: Any, what: str = "a table") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(source, where, f"expected {what}, got {describe(value)}")
    return value


def _string(source: str, where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(source, where, f"expected a string, got {describe(value)}")
    return value


def _pairs(source: str, where: str, value: Any) -> list[tuple[str, str]]:
    """HAR's [{"name": ..., "value": ...}] lists."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(
            source, where, f"expected a list of {{name, value}} tables, got {describe(value)}"
        )
    pairs = []
    for index, item in enumerate(value):
        item = _table(source, f"{where}[{index}]", item, "a {name, value} table")
        pairs.append(
            (
                _string(source, f"{where}[{index}].name", item.get("name")),
                _string(source, f"{where}[{index}].value", item.get("value", "")),
            )
        )
    return pairs


def profile_from_har(path: str | Path) -> tuple[dict[str, Any], list[str]]:
    """A profile document from a HAR file, and warnings for the user; raises InputError."""
    source = str(path)
    har = _table(source, "", read_json_file(path, "HAR"), "a HAR document (a table with a log)")
    log = _table(source, "log", har.get("log"))
    entries = log.get("entries")
    if not isinstance(entries, list):
        raise InputError(
            source, "log.entries", f"expected a list of requests, got {describe(entries)}"
        )
    skipped: Counter[str] = Counter()
    usable: list[tuple[int, dict[str, Any], str, str]] = []  # index, request, method, url
    for index, entry in enumerate(entries):
        where = f"log.entries[{index}]"
        entry = _table(source, where, entry)
        request = _table(source, f"{where}.request", entry.get("request"))
        method = _string(source, f"{where}.request.method", request.get("method")).upper()
        url = _string(source, f"{where}.request.url", request.get("url"))
        reason = _skip_reason(entry, request, method, url)
        if reason:
            skipped[reason] += 1
        else:
            usable.append((index, request, method, url))
    origins = Counter(_origin(url) for _, _, _, url in usable)
    if not origins:
        found = (
            "; ".join(f"{count} {reason}" for reason, count in skipped.items())
            or "the log is empty"
        )
        raise InputError(
            source, "log.entries", f"expected at least one HTTP request to import ({found})"
        )
    target = origins.most_common(1)[0][0]
    others = {origin: count for origin, count in origins.items() if origin != target}
    warnings = [f"skipped {count} {reason}" for reason, count in skipped.items()]
    if others:
        hosts = ", ".join(sorted(others)[:5]) + (" ..." if len(others) > 5 else "")
        warnings.append(
            f"skipped {sum(others.values())} requests to other origins ({hosts}): "
            f"the profile targets {target}"
        )
    secrets = Secrets()
    groups: dict[tuple[str, str], list[tuple[int, dict[str, Any], str]]] = {}
    for index, request, method, url in usable:
        if _origin(url) == target:
            key = (method, url.split("#")[0].split("?")[0])
            groups.setdefault(key, []).append((index, request, url))
    statuses = _statuses(entries)
    endpoints: list[dict[str, Any]] = []
    seen: set[str] = set()
    for (method, _), members in groups.items():
        index, request, url = members[0]
        endpoint = _endpoint(source, index, request, method, url, secrets, warnings)
        if endpoint is None:
            continue
        endpoint["name"] = unique_name(endpoint["name"], seen)
        endpoint["weight"] = len(members)
        ok = sorted({statuses[i] for i, _, _ in members if 200 <= statuses.get(i, 0) < 400})
        endpoint["expect"] = ok or None
        endpoints.append(endpoint)
    if not endpoints:
        raise InputError(
            source, "log.entries", "expected at least one request that can be imported"
        )
    name = Path(source).stem or "recording"
    document = profile_document(
        name, f"Imported from the HAR recording {Path(source).name}.", target, endpoints
    )
    return document, [*secrets.warnings(), *warnings]


def _skip_reason(
    entry: dict[str, Any], request: dict[str, Any], method: str, url: str
) -> str | None:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("ws", "wss") or "_webSocketMessages" in entry:
        return "WebSocket connections"
    if scheme not in ("http", "https"):
        return f"{scheme or 'non-HTTP'}: URLs"
    headers = request.get("headers")
    if isinstance(headers, list) and any(
        isinstance(h, dict)
        and str(h.get("name", "")).lower() == "upgrade"
        and str(h.get("value", "")).lower() == "websocket"
        for h in headers
    ):
        return "WebSocket connections"
    if method not in METHODS:
        return f"{method} requests"
    try:
        _ = urlsplit(url).port  # raises on a port out of range
    except ValueError:
        return "requests with malformed URLs"
    return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{host}" + (f":{parts.port}" if parts.port is not None else "")


def _statuses(entries: list[Any]) -> dict[int, int]:
    statuses = {}
    for index, entry in enumerate(entries):
        response = entry.get("response") if isinstance(entry, dict) else None
        status = response.get("status") if isinstance(response, dict) else None
        if isinstance(status, int) and not isinstance(status, bool):
            statuses[index] = status
    return statuses


def _endpoint(
    source: str,
    index: int,
    request: dict[str, Any],
    method: str,
    url: str,
    secrets: Secrets,
    warnings: list[str],
) -> dict[str, Any] | None:
    where = f"log.entries[{index}].request"
    headers: dict[str, str] = {}
    for name, value in _pairs(source, f"{where}.headers", request.get("headers")):
        lowered = name.lower()
        if name.startswith(":") or lowered in DROPPED_HEADERS:
            continue
        existing = next((k for k in headers if k.lower() == lowered), None)
        if existing is not None:  # HTTP/2 splits cookies over several headers: join them again
            value = headers.pop(existing) + ("; " if lowered == "cookie" else ", ") + value
        headers[name] = value
    headers = {name: secrets.header(name, value) for name, value in headers.items()}
    _, path, pairs = split_url(url, source, f"{where}.url", secrets, headers)
    path, query = place_query(path, pairs, secrets)
    endpoint: dict[str, Any] = {
        "name": f"{method} {path.split('?')[0]}",
        "method": method,
        "path": path,
        "headers": headers,
        "query": query,
    }
    post = request.get("postData")
    if post is None:
        return endpoint
    post = _table(source, f"{where}.postData", post)
    mime = post.get("mimeType") if isinstance(post.get("mimeType"), str) else None
    content_type = header_value(headers, "content-type") or mime or None
    if content_type and content_type.lower().startswith("multipart/"):
        warnings.append(
            f"skipped {method} {path.split('?')[0]} ({where}): multipart bodies cannot be imported"
        )
        return None
    text = post.get("text")
    if text is not None:
        text = _string(source, f"{where}.postData.text", text)
    else:
        params = _pairs(source, f"{where}.postData.params", post.get("params"))
        text = urlencode(params) if params else None
        if text and header_value(headers, "content-type") is None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
    if text:
        endpoint.update(body_fields(text, content_type, f"{where}.postData", secrets, warnings))
    return endpoint
