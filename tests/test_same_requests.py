"""The two HTTP clients (fast, aiohttp) send the same requests and are counted alike.

Issue 25 §2: the bytes each client puts on the wire for the same endpoint are compared
(captured by a raw server that records them), the same header-size limits hold on both, and
in the open model every request that fell due is exactly one of requests, cancelled or
dropped, on both.
"""

from __future__ import annotations

from typing import Any

from conftest import ServerThread, counting_app

from stressdeck.engine import build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.profiles.profile import parse_profile


def plan_for(base_url: str, endpoints: list[dict[str, Any]], client: str, **load: Any) -> Any:
    document: dict[str, Any] = {
        "name": "same",
        "base_url": base_url,
        "endpoints": endpoints,
        "load": load,
    }
    return build_plan(
        parse_profile(document, "same.toml"), Overrides(client=client), max_duration=30.0
    )


async def test_every_due_request_is_counted_once(client: str) -> None:
    """Open model past what the target can take: some requests wait, some are dropped, some
    are on the wire at stop; due = requests + cancelled + dropped, exactly."""
    with ServerThread(counting_app()) as server:
        plan = plan_for(
            server.url,
            [{"name": "slow", "path": "/slow?ms=40"}],
            client,
            model="open",
            rate=300,
            duration="2s",
            connections=4,
            max_in_flight=20,
        )
        final = await (await start(plan)).wait()
    total = final.total
    assert total.dropped > 0 and total.requests > 0  # the bound was reached, work was done
    assert total.due == total.requests + total.cancelled + total.dropped, total
    assert total.due == sum(ep.due for ep in final.endpoints)
    # Every request the server answered was counted; a cancelled one may or may not have
    # been read by it before the stop.
    assert total.requests <= server.count <= total.requests + total.cancelled
