"""What every importer shares: secret references, body and query shaping, names.

Secrets are never written: a credential found in a header, a query parameter or the
userinfo of a URL becomes a ``${STRESSDECK_...}`` reference that the run expands from
the environment, and a warning names the variable to set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from stressdeck.core.errors import InputError, describe
from stressdeck.core.files import read_regular
from stressdeck.core.redact import REDACTED, is_reference, is_secret_name

# What an imported profile runs with until the user edits it: modest on purpose, since the
# recorded target may well be a shared or production server.
DEFAULT_LOAD = {"model": "closed", "users": 5, "duration": "30s"}

# Connection-level and computed headers: the HTTP client sets them itself, per connection.
DROPPED_HEADERS = {
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "accept-encoding",
}

# Query parameter and body field names that carry credentials. Narrower than the header
# rule on purpose: "max_tokens" or "session_count" in a body are not secrets.
_SECRET_FIELDS = {
    "password",
    "passwd",
    "pwd",
    "secret",
    "clientsecret",
    "apikey",
    "key",
    "token",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "authtoken",
    "sessionid",
    "sid",
    "sig",
    "signature",
    "auth",
    "authorization",
    "credentials",
    "privatekey",
}
_SECRET_SUFFIXES = ("password", "secret", "apikey", "accesstoken", "refreshtoken", "authtoken")
_AUTH_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)\s+(\S.*)", re.DOTALL)
_MAX_BODY_DEPTH = 32


def env_name(name: str) -> str:
    """``Authorization`` -> ``STRESSDECK_AUTHORIZATION``, ``X-Api-Key`` -> ``STRESSDECK_X_API_KEY``."""
    return "STRESSDECK_" + (re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "SECRET")


def is_secret_field(name: str) -> bool:
    normalized = re.sub(r"[^a-z0-9]", "", name.lower())
    return normalized in _SECRET_FIELDS or normalized.endswith(_SECRET_SUFFIXES)


class Secrets:
    """Turns literal credentials into ``${VAR}`` references and remembers what to set."""

    def __init__(self) -> None:
        self._needed: dict[str, str] = {}  # variable -> what to put in it
        self._redacted: list[str] = []

    def header(self, name: str, value: str) -> str:
        if not value.strip() or not is_secret_name(name) or is_reference(value):
            return value
        variable = env_name(name)
        match = _AUTH_SCHEME.fullmatch(value.strip())
        if name.lower() in ("authorization", "proxy-authorization") and match:
            # Keep the scheme word visible ("Bearer ${...}"): the variable holds only the credential.
            self._need(variable, f"the {match.group(1)} credentials of the {name} header")
            return f"{match.group(1)} ${{{variable}}}"
        self._need(variable, f"the value of the {name} header")
        return f"${{{variable}}}"

    def query(self, name: str, value: str) -> str:
        if not value or not is_secret_field(name) or is_reference(value):
            return value
        variable = env_name(name)
        self._need(variable, f"the value of the query parameter {name!r}")
        return f"${{{variable}}}"

    def basic_auth(self, user: str) -> str:
        """The Authorization value for ``curl -u`` or ``http://user:pass@host``."""
        variable = "STRESSDECK_BASIC_AUTH"
        who = f"{user}:PASSWORD" if user else "USER:PASSWORD"
        self._need(variable, f"base64 of '{who}', e.g. $(printf %s '{who}' | base64)")
        return f"Basic ${{{variable}}}"

    def reference(self, variable: str, what: str) -> str:
        self._need(variable, what)
        return f"${{{variable}}}"

    def redact_body(self, value: Any, where: str) -> Any:
        """Replace credential-looking string fields of a JSON body (bodies are not env-expanded)."""
        return self._redact(value, where, 0)

    def _redact(self, value: Any, where: str, depth: int) -> Any:
        if depth > _MAX_BODY_DEPTH:
            return value
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if (
                    isinstance(item, str)
                    and item
                    and is_secret_field(str(key))
                    and not is_reference(item)
                ):
                    self._redacted.append(f"{where}.{key}")
                    out[key] = REDACTED
                else:
                    out[key] = self._redact(item, f"{where}.{key}", depth + 1)
            return out
        if isinstance(value, list):
            return [self._redact(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
        return value

    def redact_form(self, text: str, where: str) -> str:
        """The same for an urlencoded form body; the text is re-encoded only when it changes."""
        pairs = parse_qsl(text, keep_blank_values=True)
        if not pairs or "=" not in text or not any(v and is_secret_field(k) for k, v in pairs):
            return text
        out = []
        for key, item in pairs:
            if item and is_secret_field(key) and not is_reference(item):
                self._redacted.append(f"{where}.{key}")
                item = REDACTED
            out.append((key, item))
        return urlencode(out)

    def _need(self, variable: str, what: str) -> None:
        self._needed.setdefault(variable, what)

    def warnings(self) -> list[str]:
        notes = [
            f"set {variable} to {what} before running (secrets are not written to the profile)"
            for variable, what in self._needed.items()
        ]
        if self._redacted:
            fields = ", ".join(self._redacted[:5]) + (" ..." if len(self._redacted) > 5 else "")
            notes.append(
                f"wrote {REDACTED} instead of the credential in {fields}: put a test value there"
            )
        return notes


def split_url(
    url: str, source: str, where: str, secrets: Secrets, headers: dict[str, str]
) -> tuple[str, str, list[tuple[str, str]]]:
    """Origin, path and query pairs of an absolute http(s) URL; userinfo becomes Basic auth."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise InputError(
            source, where, f"expected an http:// or https:// URL, got {describe(url)}"
        ) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InputError(source, where, f"expected an http:// or https:// URL, got {describe(url)}")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    origin = f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")
    if parts.username is not None and not any(k.lower() == "authorization" for k in headers):
        headers["Authorization"] = secrets.basic_auth(parts.username)
    return origin, parts.path or "/", parse_qsl(parts.query, keep_blank_values=True)


def place_query(
    path: str, pairs: list[tuple[str, str]], secrets: Secrets
) -> tuple[str, dict[str, str]]:
    """A query table when every name is unique; otherwise the raw query stays in the path."""
    pairs = [(k, secrets.query(k, v)) for k, v in pairs]
    names = [k for k, _ in pairs]
    if len(set(names)) == len(names):
        return path, dict(pairs)
    # Repeated names (?tag=a&tag=b) do not fit a table; keep ${VAR} references unescaped.
    raw = "&".join(
        f"{quote(k, safe='')}={v if is_reference(v) else quote(v, safe='')}" for k, v in pairs
    )
    return f"{path}?{raw}", {}


def is_json_type(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def body_fields(
    text: str, content_type: str | None, where: str, secrets: Secrets, warnings: list[str]
) -> dict[str, Any]:
    """``{"json": ...}`` for a JSON object or array, else ``{"body": text}``; credentials redacted."""
    media = (content_type or "").split(";")[0].strip().lower()
    if content_type is None or is_json_type(content_type):
        try:
            parsed = json.loads(text) if text.lstrip()[:1] in ("{", "[") else None
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, (dict, list)):
            return {"json": secrets.redact_body(parsed, where)}
        if content_type is not None and text.strip():
            warnings.append(
                f"{where}: the body is not valid JSON although Content-Type says so; kept as text"
            )
    if media == "application/x-www-form-urlencoded" or (content_type is None and "=" in text):
        return {"body": secrets.redact_form(text, where)}
    return {"body": text}


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def unique_name(name: str, seen: set[str]) -> str:
    candidate, number = name, 2
    while candidate in seen:
        candidate, number = f"{name} ({number})", number + 1
    seen.add(candidate)
    return candidate


def slugify(name: str, empty: str = "imported") -> str:
    """A file-name-safe form of ``name``: lower-case words joined by dashes, ``empty`` if none."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-")
    return slug or empty


def profile_document(
    name: str,
    description: str,
    base_url: str | None,
    endpoints: Iterable[dict[str, Any]],
    *,
    insecure: bool = False,
) -> dict[str, Any]:
    document: dict[str, Any] = {"name": name, "description": description}
    if base_url is not None:
        document["base_url"] = base_url
    if insecure:
        document["insecure"] = True
    document["load"] = dict(DEFAULT_LOAD)
    document["endpoints"] = [
        {
            k: v
            for k, v in ep.items()
            if v is not None and (v or k not in ("headers", "query", "expect"))
        }
        for ep in endpoints
    ]
    return document


def read_text_file(path: str | Path, what: str) -> str:
    """The UTF-8 text of an input file (a BOM is dropped); raises InputError in one line.

    ``what`` is the kind of file (``HAR``, ``OpenAPI``, ``curl data``): only a regular file
    under that kind's size cap is read.
    """
    source = str(path)
    try:
        return read_regular(source, what).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(source, "", "expected UTF-8 text") from None


def read_json_file(path: str | Path, what: str) -> Any:
    return parse_json(str(path), read_text_file(path, what))


def parse_json(source: str, text: str) -> Any:
    """A JSON document; raises InputError in one line naming ``source``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(source, "", f"invalid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise InputError(source, "", "document nested too deeply") from None
