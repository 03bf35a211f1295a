"""A one-endpoint profile from a URL, as `oha URL` takes one: `stressdeck URL`,
`stressdeck run URL`, and a URL typed in the console's picker. ``--method``, ``-H`` and
``--body`` read as curl's do."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from stressdeck.core.errors import InputError
from stressdeck.core.hosts import is_loopback_url
from stressdeck.core.redact import url_name
from stressdeck.profiles.profile import METHODS, Profile, parse_profile

SOURCE = "ad-hoc"  # what error lines name instead of a file
# The load a URL gets against a host that is not this machine, unless --users or --rate ask
# for more: a probe at a fixed 5 requests/s (150 in the default 30 s), not 10 unthrottled
# users, which sent thousands a second to whatever answered fast.
REMOTE_LOAD = {"model": "open", "rate": 5.0, "users": 1}


def looks_like_url(text: str) -> bool:
    """True for what is meant as a URL rather than a profile file."""
    return text.strip().lower().startswith(("http://", "https://"))


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` as curl's -H takes it; raises InputError."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or any(c.isspace() for c in name.strip()):
        raise InputError("-H", "", f'expected "Name: value", got {text!r}')
    return name.strip(), value.strip()


def url_profile(
    url: str,
    method: str = "GET",
    headers: Sequence[str] = (),
    body: str | None = None,
) -> Profile:
    """The profile for one URL; the same checks as a profile file (loopback or not, the
    scheme, the method). Against a host that is not loopback its load is REMOTE_LOAD.
    Raises InputError."""
    method = (method or "GET").strip().upper()
    url = url.strip()
    if method not in METHODS:
        raise InputError(SOURCE, "method", "expected one of " + ", ".join(METHODS))
    if not url:
        raise InputError(SOURCE, "url", "expected a URL like http://127.0.0.1:8080/health")
    path = urlsplit(url).path or "/"
    endpoint: dict[str, object] = {"name": url_name(method, path), "method": method, "url": url}
    if headers:
        endpoint["headers"] = dict(parse_header(h) for h in headers)
    if body is not None:
        endpoint["body"] = body
    document: dict[str, object] = {"name": url_name(method, url), "endpoints": [endpoint]}
    if not is_loopback_url(url):
        document["load"] = dict(REMOTE_LOAD)
    return parse_profile(document, SOURCE)
