"""Redaction of secrets typed literally into a profile, before it is written or shown.

A header or query value (or a password in a URL) that is only ``${VAR}`` references (optionally after an auth scheme
word such as ``Bearer``) is kept: the secret lives in the environment, not in the file.
Anything else under a secret-looking name is replaced by ``<redacted>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_plus

REDACTED = "<redacted>"

_SECRET_NAMES = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "x-auth-token",
    "x-csrf-token",
}
_SECRET_PARTS = ("token", "secret", "password", "passwd", "api_key", "api-key", "apikey", "session")
# ${ENV} references and {var} templates (values extracted at run time) hold no secret text.
_REFERENCE = (
    r"(?:\$\{[A-Za-z_][A-Za-z0-9_]*\}|(?<!\$)\{[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)?\})"
)
# "Bearer ${TOKEN}", "${API_KEY}", "{login.token}": an optional scheme word, then only references.
_ONLY_REFERENCES = re.compile(
    rf"\s*(?:[A-Za-z][A-Za-z0-9-]*\s+)?{_REFERENCE}(?:\s*{_REFERENCE})*\s*"
)


# Query parameter names that carry a credential although no _SECRET_PARTS word is in them.
_SECRET_QUERY_NAMES = {"key", "sig", "signature", "auth", "pwd", "sid", "credentials", "code"}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(part in lowered for part in _SECRET_PARTS)


def is_reference(value: str) -> bool:
    """True when the value carries no literal secret: only references, after a scheme word."""
    return _ONLY_REFERENCES.fullmatch(value) is not None


def redact_values(
    table: Mapping[str, Any], is_secret: Callable[[str], bool] | None = None
) -> dict[str, Any]:
    """The table with every literal value under a secret name (``is_secret_name`` unless
    told: query tables use ``is_secret_query``) replaced by ``<redacted>``."""
    secret = is_secret or is_secret_name
    return {
        name: REDACTED
        if isinstance(value, str) and secret(name) and not is_reference(value)
        else value
        for name, value in table.items()
    }


def redact_url(url: str) -> str:
    """The URL with its userinfo and its secret-looking query values redacted.

    Userinfo goes whole (``user:pw@`` becomes ``<redacted>@``) unless its password is a
    ``${VAR}`` reference: the user name is often half the credential, or all of it (a token
    passed as the user). It is everything before the
    *last* ``@`` of the authority, as an HTTP client reads it, so a raw ``@`` in a password
    hides nothing. Works on a path with a query (``/metrics?token=...``) too.
    """
    scheme = _SCHEME.match(url)
    start = scheme.end() if scheme else 0
    if scheme:
        end = min((i for i in (url.find(c, start) for c in "/?#") if i >= 0), default=len(url))
        at = url.rfind("@", start, end)
        if at >= 0:
            password = url[start:at].partition(":")[2]
            if not (password and is_reference(password)):
                url = url[:start] + REDACTED + url[at:]
    query_at = url.find("?")
    if query_at < 0:
        return url
    fragment_at = url.find("#", query_at)
    end = fragment_at if fragment_at >= 0 else len(url)
    query = "&".join(_redact_pair(pair) for pair in url[query_at + 1 : end].split("&"))
    return url[: query_at + 1] + query + url[end:]


def url_name(method: str, url: str) -> str:
    """The name a profile takes from a URL (``GET http://host/x``), its secrets redacted.

    The one place a name is made from a URL: a name is printed, saved and exported as it is,
    and no later redaction looks inside it.
    """
    return f"{method} {redact_url(url)}"


def _redact_pair(pair: str) -> str:
    name, equals, value = pair.partition("=")
    if not equals or not value or not is_secret_query(unquote_plus(name)):
        return pair
    if is_reference(unquote_plus(value)):
        return pair
    return f"{name}={REDACTED}"


def is_secret_query(name: str) -> bool:
    """A query parameter whose value is a credential: ``token``, ``api_key``, ``sig`` ..."""
    return is_secret_name(name) or re.sub(r"[^a-z]", "", name.lower()) in _SECRET_QUERY_NAMES


# Where a profile (or its command-line overrides) names a whole URL. A metrics endpoint or a
# proxy is as likely as the target to carry a password in its URL.
URL_FIELDS = ("base_url", "metrics_url", "proxy")


def redact_urls(table: dict[str, Any]) -> dict[str, Any]:
    """The password of every URL_FIELDS URL in ``table`` redacted, in place."""
    for key in URL_FIELDS:
        if isinstance(table.get(key), str):
            table[key] = redact_url(table[key])
    return table


def redact_document(document: dict[str, Any]) -> dict[str, Any]:
    """Redact headers (profile-wide and per endpoint), query parameters and URL passwords, in place.

    Request bodies are kept as written: they cannot hold ``${VAR}`` references, so redacting
    them would make the session impossible to replay.
    """
    redact_urls(document)
    defaults = document.get("defaults")
    if isinstance(defaults, dict) and isinstance(defaults.get("headers"), dict):
        defaults["headers"] = redact_values(defaults["headers"])
    endpoints = document.get("endpoints")
    if isinstance(endpoints, list):
        for endpoint in endpoints:
            if not isinstance(endpoint, dict):
                continue
            if isinstance(endpoint.get("headers"), dict):
                endpoint["headers"] = redact_values(endpoint["headers"])
            # A query table's names are read as a URL's query is (``sig``, ``code`` ...).
            if isinstance(endpoint.get("query"), dict):
                endpoint["query"] = redact_values(endpoint["query"], is_secret_query)
            if isinstance(endpoint.get("url"), str):
                endpoint["url"] = redact_url(endpoint["url"])
    return document


def redacted_fields(document: Mapping[str, Any]) -> list[str]:
    """Where a saved profile holds ``<redacted>``: a replay would send that text instead."""
    found = [
        key
        for key in URL_FIELDS
        if isinstance(document.get(key), str) and REDACTED in document[key]
    ]
    defaults = document.get("defaults")
    if isinstance(defaults, Mapping) and isinstance(defaults.get("headers"), Mapping):
        found += [f"defaults.headers.{k}" for k, v in defaults["headers"].items() if v == REDACTED]
    endpoints = document.get("endpoints")
    if isinstance(endpoints, list):
        for index, endpoint in enumerate(endpoints):
            if isinstance(endpoint, Mapping):
                for key in ("headers", "query"):
                    if isinstance(endpoint.get(key), Mapping):
                        found += [
                            f"endpoints[{index}].{key}.{k}"
                            for k, v in endpoint[key].items()
                            if v == REDACTED
                        ]
                if isinstance(endpoint.get("url"), str) and REDACTED in endpoint["url"]:
                    found.append(f"endpoints[{index}].url")
    return found
