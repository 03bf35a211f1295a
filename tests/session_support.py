"""Helpers for the session, replay, compare and report tests: real short runs and crafted files."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping
from typing import Any

import stressdeck
from stressdeck.engine import Plan, RunHandle, Snapshot, build_plan, start
from stressdeck.engine.overrides import Overrides
from stressdeck.profiles.profile import parse_profile

# (offset in seconds, action on the handle): the live changes a test run makes.
Change = tuple[float, Callable[[RunHandle], None]]


def profile_document(
    base_url: str, *, duration: str = "2s", users: int = 2, **extra: Any
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "session test",
        "base_url": base_url,
        "thresholds": ["p95 < 2s", "error_rate < 50%"],
        "load": {"model": "closed", "users": users, "duration": duration},
        "endpoints": [
            {"name": "ok", "path": "/ok", "weight": 3, "thresholds": ["p99 < 5s"]},
            {"name": "teapot", "path": "/status/418", "weight": 1, "expect": [418]},
        ],
    }
    document.update(extra)
    return document


async def run_document(
    document: Mapping[str, Any],
    changes: list[Change] = (),
    source: str = "test.toml",
    **overrides: Any,
) -> tuple[Plan, Snapshot]:
    """Run a profile document to its end, applying ``changes`` at their offsets."""
    plan = build_plan(parse_profile(document, source), Overrides(**overrides))
    handle = await start(plan)
    for offset, action in changes:
        await asyncio.sleep(max(offset - handle.elapsed(), 0))
        action(handle)
    return plan, await handle.wait()


def run_sync(
    document: Mapping[str, Any], changes: list[Change] = (), **overrides: Any
) -> tuple[Plan, Snapshot]:
    return asyncio.run(run_document(document, changes, **overrides))


def _endpoint(
    requests: int, rps: float, error_rate: float, p50: float, p95: float, p99: float
) -> dict[str, Any]:
    errors = round(requests * error_rate)
    return {
        "requests": requests,
        "errors": errors,
        "rps": rps,
        "error_rate": error_rate,
        "status_counts": {"200": requests - errors, "500": errors},
        "error_counts": {},
        "bytes": requests * 10,
        "dropped": 0,
        "cancelled": 0,
        "skipped": 0,
        "latency_ms": {
            "p50": p50,
            "p90": p95,
            "p95": p95,
            "p99": p99,
            "p999": p99,
            "max": p99,
            "mean": p50,
        },
        "service_ms": {
            "p50": p50,
            "p90": p95,
            "p95": p95,
            "p99": p99,
            "p999": p99,
            "max": p99,
            "mean": p50,
        },
        "ttfb_ms": {"p50": p50, "p95": p95, "p99": p99},
    }


BASE_FIGURES = {
    "requests": 1000,
    "rps": 100.0,
    "error_rate": 0.0,
    "p50": 10.0,
    "p95": 20.0,
    "p99": 40.0,
}


def crafted_document(
    endpoints: Mapping[str, Mapping[str, float]] | None = None,
    thresholds: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A valid session document with chosen figures, no run needed (total = first endpoint)."""
    endpoints = endpoints or {"home": BASE_FIGURES}
    first = next(iter(endpoints.values()))
    return copy.deepcopy(
        {
            "format_version": 1,
            "stressdeck_version": stressdeck.__version__,
            "created": "2024-01-01T00:00:00+00:00",
            "host": {"cores": 4, "ram_bytes": 8 * 2**30, "os": "Linux", "python": "3.11.7"},
            "plan": {
                "name": "crafted",
                "source": "crafted.toml",
                "target": "http://127.0.0.1:9",
                "overrides": {"duration": 10.0},
                "load": {
                    "model": "closed",
                    "users": 5,
                    "duration": 10.0,
                    "stages": [],
                    "max_duration": 600.0,
                    "tick": 0.25,
                },
                "profile": {
                    "name": "crafted",
                    "base_url": "http://127.0.0.1:9",
                    "endpoints": [{"name": name, "path": "/"} for name in endpoints],
                },
            },
            "results": {
                "name": "crafted",
                "target": "http://127.0.0.1:9",
                "model": "closed",
                "elapsed": 10.0,
                "stop_reason": "duration reached",
                "summary": {
                    "total": _endpoint(**first),  # type: ignore[arg-type]
                    "endpoints": {name: _endpoint(**f) for name, f in endpoints.items()},
                },  # type: ignore[arg-type]
                "thresholds": thresholds
                if thresholds is not None
                else [
                    {"expr": "p95 < 200ms", "value": first["p95"], "ok": True},
                    {
                        "expr": "error_rate < 1%",
                        "endpoint": next(iter(endpoints)),
                        "value": 0.5,
                        "ok": False,
                    },
                ],
                "control_log": [
                    {"offset": 1.5, "command": "users", "value": 8},
                    {"offset": 3.0, "command": "pause"},
                ],
                "timeline": [
                    {
                        "t": float(t),
                        "span": 1.0,
                        "requests": 100,
                        "rps": 100.0,
                        "errors": 0,
                        "p50": 10.0,
                        "p95": 20.0,
                        "p99": 40.0 + t,
                        "users": 5,
                        "dropped": 0,
                    }
                    for t in range(1, 11)
                ],
                "generator": {
                    "loop_lag_ms": 0.5,
                    "send_lag_ms": 0.1,
                    "cpu_percent": 12.0,
                    "processes": 1,
                },
            },
            "histograms": {},
        }
    )
