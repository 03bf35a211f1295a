"""Opening a connection where the plan's routes say: the URL's host and port, the address
``--connect-to`` maps them to, or a unix socket; from ``--local-address`` when given.

TLS is unchanged by a route: the server name sent and verified is still the URL's host.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TypeVar

from stressdeck.profiles.routes import NO_ROUTES, Routes

__all__ = ["NO_ROUTES", "open_connection"]
P = TypeVar("P", bound=asyncio.Protocol)


async def open_connection(
    loop: asyncio.AbstractEventLoop,
    factory: Callable[[], P],
    routes: Routes,
    host: str,
    port: int,
    *,
    ssl: ssl.SSLContext | None,
    server_hostname: str | None,
) -> tuple[asyncio.BaseTransport, P]:
    """``loop.create_connection`` to where ``host:port`` is routed."""
    if routes.unix_socket:
        return await loop.create_unix_connection(
            factory, routes.unix_socket, ssl=ssl, server_hostname=server_hostname
        )
    address, to_port = routes.address(host, port)
    local = (routes.local_address, 0) if routes.local_address else None
    return await loop.create_connection(
        factory, address, to_port, ssl=ssl, server_hostname=server_hostname, local_addr=local
    )
