"""Where a request's connection goes when that is not simply its URL's host and port: curl's
``--connect-to`` (one pod behind a load balancer), a unix socket, a source address, an HTTP
proxy. The URL, the Host header, TLS's server name and the certificate checked stay the
URL's; only the address dialled changes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

from stressdeck.core.errors import InputError, describe
from stressdeck.core.hosts import is_loopback
from stressdeck.core.redact import redact_url


@dataclass(frozen=True)
class ConnectTo:
    """``HOST:PORT:ADDR:PORT`` as curl reads it: an empty HOST or PORT matches any, an empty
    ADDR or PORT keeps the request's own."""

    host: str
    port: int | None
    to_host: str
    to_port: int | None

    def matches(self, host: str, port: int) -> bool:
        return (not self.host or self.host == host.lower()) and self.port in (None, port)

    def __str__(self) -> str:
        def part(value: object) -> str:
            text = "" if value is None else str(value)
            return f"[{text}]" if ":" in text else text

        return ":".join(part(v) for v in (self.host, self.port, self.to_host, self.to_port))


class Host(NamedTuple):
    """A host as the URL names it, and where its connections actually go."""

    name: str
    dialled: str

    @property
    def label(self) -> str:
        return self.name if self.name == self.dialled else f"{self.name} via {self.dialled}"

    @property
    def local(self) -> bool:
        # A unix socket is a file on this machine.
        return self.dialled.startswith("unix:") or is_loopback(self.dialled)


@dataclass(frozen=True)
class Routes:
    """How connections are made for a run (nothing set: to the URL's host, as usual)."""

    connect_to: tuple[ConnectTo, ...] = ()
    unix_socket: str | None = None
    local_address: str | None = None
    # An HTTP proxy per scheme of the request's URL (https goes through a CONNECT tunnel).
    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: tuple[str, ...] = ()

    def address(self, host: str, port: int) -> tuple[str, int]:
        """The host and port to dial for a request to ``host:port`` (the first match wins)."""
        for rule in self.connect_to:
            if rule.matches(host, port):
                return rule.to_host or host, rule.to_port or port
        return host, port

    def proxy_for(self, url: str) -> str | None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if any(host == name or host.endswith("." + name) or name == "*" for name in self.no_proxy):
            return None
        return self.https_proxy if parts.scheme == "https" else self.http_proxy

    def host(self, url: str) -> Host | None:
        """The URL's host and where its connections go; None for a URL without a host."""
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return None
        name = parts.hostname
        if not name:
            return None
        if self.unix_socket:
            return Host(name, f"unix:{self.unix_socket}")
        proxy = self.proxy_for(url)
        if proxy:
            return Host(name, urlsplit(proxy).hostname or proxy)
        dialled, _ = self.address(name, port)
        return Host(name, dialled.strip("[]"))


NO_ROUTES = Routes()  # connections go where each URL says


def parse_connect_to(text: str, source: str, where: str) -> ConnectTo:
    """One ``HOST:PORT:ADDR:PORT`` (IPv6 addresses in brackets); raises InputError."""
    parts = _split_colons(text)
    if parts is None or len(parts) != 4:
        raise InputError(
            source,
            where,
            f"expected HOST:PORT:ADDR:PORT as curl's --connect-to, got {describe(text)}",
        )
    host, port, to_host, to_port = parts
    return ConnectTo(
        host.strip("[]").lower(),
        _port(port, source, where),
        to_host.strip("[]"),
        _port(to_port, source, where),
    )


def _split_colons(text: str) -> list[str] | None:
    parts, current, bracket = [], "", False
    for char in text:
        if char == "[":
            bracket = True
        elif char == "]":
            bracket = False
        if char == ":" and not bracket:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return None if bracket else parts


def _port(text: str, source: str, where: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InputError(source, where, f"expected a port from 1 to 65535, got {describe(text)}")
    return int(text)


def parse_proxy(text: str, source: str, where: str) -> str:
    """An ``http://HOST:PORT`` proxy URL; credentials in it are allowed (``${ENV}`` best)."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme != "http" or not parts.hostname:
        raise InputError(
            source,
            where,
            f"expected an http://HOST:PORT proxy (https goes through it with CONNECT), "
            f"got {describe(redact_url(text))}",
        )
    return text


def parse_local_address(text: str, source: str, where: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        raise InputError(
            source, where, f"expected an IP address of this machine, got {describe(text)}"
        ) from None


def proxies_from_env(env: Mapping[str, str]) -> tuple[str | None, str | None, tuple[str, ...]]:
    """``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY`` (either case), as curl reads them."""

    def get(name: str) -> str | None:
        return env.get(name.lower()) or env.get(name.upper()) or None

    http = get("http_proxy")
    https = get("https_proxy")
    no_proxy = tuple(
        name.strip().lstrip(".").lower()
        for name in (get("no_proxy") or "").split(",")
        if name.strip()
    )
    for name, value in (("HTTP_PROXY", http), ("HTTPS_PROXY", https)):
        if value is not None:
            parse_proxy(value, "environment", name)
    return http, https, no_proxy


def parse_routes(
    source: str,
    connect_to: Iterable[str] = (),
    unix_socket: str | None = None,
    local_address: str | None = None,
    proxy: str | None = None,
    where: Mapping[str, str] | None = None,
) -> Routes:
    """Routes from their written forms; ``where`` names each field for error lines."""
    names = {
        "connect_to": "connect_to",
        "unix_socket": "unix_socket",
        "local_address": "local_address",
        "proxy": "proxy",
        **(where or {}),
    }
    rules = tuple(
        parse_connect_to(text, source, f"{names['connect_to']}[{i}]")
        for i, text in enumerate(connect_to)
    )
    if unix_socket is not None and not unix_socket:
        raise InputError(source, names["unix_socket"], "expected the path of a unix socket")
    address = (
        parse_local_address(local_address, source, names["local_address"])
        if local_address
        else None
    )
    proxy = parse_proxy(proxy, source, names["proxy"]) if proxy else None
    return Routes(rules, unix_socket or None, address, proxy, proxy)
