"""Our own live figures for Prometheus: ``--serve-metrics [HOST:]PORT``.

A custom collector hands prometheus-client the runner's latest snapshot on every scrape:
the counters are the run's own cumulative counts, so a scrape at the end equals the
summary. The server runs on prometheus-client's thread; the runner's loop only swaps in
an immutable snapshot (and the latency bucket counts) each tick.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import CollectorRegistry

from stressdeck.core.errors import InputError
from stressdeck.core.redact import redact_url
from stressdeck.engine.runner import RunHandle
from stressdeck.engine.snapshot import RUNNING, Snapshot

DEFAULT_HOST = "127.0.0.1"
# Fixed buckets (seconds): a histogram's buckets must not change while Grafana reads it.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def parse_listen(text: str, option: str = "--serve-metrics") -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[::1]:PORT``; the host defaults to 127.0.0.1."""
    host, _, port_text = text.rpartition(":")
    host = host.strip("[]") if host else DEFAULT_HOST
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535 or not host:
        raise InputError(
            option, "", f'expected [HOST:]PORT like "9464" or "127.0.0.1:9464", got {text!r}'
        )
    return host, port


@dataclass(frozen=True)
class _Figures:
    snapshot: Snapshot
    latency: Mapping[str, Sequence[int]] = field(default_factory=dict)


class MetricsServer:
    """Serves the live figures of one run; ``attach`` it to the run, ``close`` it after."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self.host, self.port = host, port
        self._figures: _Figures | None = None
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)
        self._server: Any = None
        self._edges_us = [edge * 1e6 for edge in LATENCY_BUCKETS]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        """Bind and serve; a port in use is one line naming the option, before any load."""
        try:
            self._server, self._thread = start_http_server(
                self.port, addr=self.host, registry=self._registry
            )
        except OSError as exc:
            raise InputError(
                "--serve-metrics",
                "",
                f"cannot listen on {self.host}:{self.port} ({exc.strerror or exc})",
            ) from None
        self.port = int(self._server.server_address[1])
        return self

    def attach(self, handle: RunHandle) -> None:
        """Follow ``handle``: every snapshot is folded in on the runner's loop."""

        def follow(snapshot: Snapshot) -> None:
            self.update(snapshot, handle.latency_counts(self._edges_us))

        self.update(handle.latest, handle.latency_counts(self._edges_us))
        handle.add_listener(follow)

    def update(self, snapshot: Snapshot, latency: Mapping[str, Sequence[int]]) -> None:
        self._figures = _Figures(snapshot, latency)  # one reference swap: scrapes see whole ticks

    def close(self) -> None:
        """Stop serving; the port is free when this returns."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(2)

    async def aclose(self) -> None:
        # shutdown() waits for the serving thread's poll (up to half a second): not on the loop.
        await asyncio.to_thread(self.close)

    # -- the collector ---------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        figures = self._figures
        if figures is None:
            return
        yield from _families(figures.snapshot, figures.latency)


def _families(snapshot: Snapshot, latency: Mapping[str, Sequence[int]]) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "stressdeck_requests",
        "Completed requests by endpoint and HTTP status",
        labels=["endpoint", "status"],
    )
    errors = CounterMetricFamily(
        "stressdeck_errors",
        "Errors by endpoint and class: transport classes, and 'status' for an unexpected status",
        labels=["endpoint", "class"],
    )
    checks = CounterMetricFamily(
        "stressdeck_checks",
        "Response checks judged, by endpoint and result (passed/failed)",
        labels=["endpoint", "result"],
    )
    check_failures = CounterMetricFamily(
        "stressdeck_check_failures",
        "Failed response checks by endpoint and check",
        labels=["endpoint", "check"],
    )
    dropped = CounterMetricFamily(
        "stressdeck_dropped", "Open model: requests not sent (max_in_flight)", labels=["endpoint"]
    )
    skipped = CounterMetricFamily(
        "stressdeck_skipped", "Requests not sent for a missing variable", labels=["endpoint"]
    )
    histogram = HistogramMetricFamily(
        "stressdeck_latency_seconds",
        "Latency of completed responses (from due time in the open model); sum from HDR means",
        labels=["endpoint"],
    )
    for ep in snapshot.endpoints:
        for code, n in ep.status_counts.items():
            requests.add_metric([ep.name, str(code)], n)
        for kind, n in ep.error_counts.items():
            errors.add_metric([ep.name, kind], n)
        status_errors = ep.errors - sum(ep.error_counts.values())
        if status_errors:
            errors.add_metric([ep.name, "status"], status_errors)
        if ep.checks_rate is not None:
            checks.add_metric([ep.name, "passed"], ep.checks_passed)
            checks.add_metric([ep.name, "failed"], ep.checks_failed)
        for expr, n in ep.check_failures.items():
            check_failures.add_metric([ep.name, expr], n)
        dropped.add_metric([ep.name], ep.dropped)
        skipped.add_metric([ep.name], ep.skipped)
        counts = latency.get(ep.name)
        if counts is not None:
            count = ep.latency_ms.count
            buckets = [(_le(edge), n) for edge, n in zip(LATENCY_BUCKETS, counts, strict=True)]
            histogram.add_metric(
                [ep.name],
                [*buckets, ("+Inf", count)],
                sum_value=ep.latency_ms.mean * count / 1000,
            )
    yield from (requests, errors, checks, check_failures, dropped, skipped, histogram)
    yield from _gauges(snapshot)


def _le(edge: float) -> str:
    return f"{edge:g}"


def _gauges(snapshot: Snapshot) -> Iterator[Metric]:
    health = snapshot.health

    def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, documentation, value=value)

    info = GaugeMetricFamily(
        "stressdeck_run",
        "The run: always 1, its facts in labels",
        labels=["target", "model", "state"],
    )
    info.add_metric([redact_url(snapshot.target), snapshot.model, snapshot.state], 1)
    yield info
    yield gauge(
        "stressdeck_running", "1 while the run sends load, else 0", snapshot.state == RUNNING
    )
    yield gauge("stressdeck_elapsed_seconds", "Time since the run started", snapshot.elapsed)
    yield gauge("stressdeck_users", "Virtual users asked for (closed model)", snapshot.users)
    yield gauge("stressdeck_active_users", "Virtual users running now", snapshot.active_users)
    if snapshot.rate is not None:
        yield gauge("stressdeck_target_rate", "Requests/s asked for (open model)", snapshot.rate)
    yield gauge("stressdeck_in_flight", "Requests sent and not yet answered", snapshot.in_flight)
    yield gauge(
        "stressdeck_loop_lag_seconds",
        "The generator's event loop lag this tick (worst process)",
        health.loop_lag_ms / 1000,
    )
    yield gauge(
        "stressdeck_send_lag_seconds",
        "Open model: how late requests went out versus their due time",
        health.send_lag_ms / 1000,
    )
    yield gauge(
        "stressdeck_cpu_percent",
        "The generator's CPU over the last second, all processes (100 = one core)",
        health.cpu_percent,
    )
    yield gauge(
        "stressdeck_saturated_seconds",
        "How long the generator was saturated so far",
        health.saturated_seconds,
    )
