"""What counts as this machine: loopback addresses and the names that always mean them."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

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
