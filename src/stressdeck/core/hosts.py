"""Hosts and URLs: what counts as this machine (loopback addresses and the names that always
mean them), and what counts as a URL we can send to."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from yarl import URL

from stressdeck.core.errors import InputError, describe

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 (bracketed or not), localhost and ``*.localhost`` (RFC 6761)."""
    host = host.strip("[]").lower().rstrip(".")
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """An http(s) URL whose host, as an HTTP client reads it, is loopback: no user part
    (``http://127.0.0.1:1@example.com/`` goes to example.com) and a valid port."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and parts.username is None
        and parts.password is None
        and parts.hostname is not None
        and is_loopback(parts.hostname)
    )


def check_url(source: str, where: str, url: str, *, needs_host: bool = True) -> None:
    """Reject anything that is not an absolute http(s) URL (``${ENV}`` parts are checked at run time)."""
    if "${" in url:
        return
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise InputError(
            source, where, f"expected an http:// or https:// URL, got {describe(url)}"
        ) from None
    if parsed.scheme not in ("http", "https") or (needs_host and not parsed.host):
        raise InputError(source, where, f"expected an http:// or https:// URL, got {describe(url)}")
