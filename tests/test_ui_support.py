"""Helpers for the console tests: a deterministic Snapshot, a fixed host monitor, screen text.

(Named test_ui_* so it sits with the UI tests; it holds no tests itself.)
"""

from __future__ import annotations

import io
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

from stressdeck.engine.overrides import Overrides
from stressdeck.engine.snapshot import (
    RUNNING,
    ControlEvent,
    EndpointSummary,
    GeneratorHealth,
    HistogramBucket,
    Percentiles,
    Snapshot,
    TimelinePoint,
)
from stressdeck.observe.metrics import MetricPoint, MetricsSnapshot, SeriesHistory
from stressdeck.observe.monitor import HostSample, ProcessSample
from stressdeck.profiles.thresholds import ThresholdResult
from stressdeck.ui.app import StressDeckApp
from stressdeck.ui.options import ConsoleOptions
from stressdeck.ui.planning import PlanSource


def buckets(
    low: float, high: float, peak: int, shift: float = 0.0, n: int = 24
) -> tuple[HistogramBucket, ...]:
    """Log-spaced buckets with a bell-shaped count around the middle (moved by ``shift``)."""
    ratio = (high / low) ** (1 / n)
    edges = [low * ratio**i for i in range(n + 1)]
    middle = n * (0.35 + shift)
    return tuple(
        HistogramBucket(edges[i], edges[i + 1], int(peak * math.exp(-((i - middle) ** 2) / 12)))
        for i in range(n)
    )


def summary(
    name: str,
    requests: int,
    errors: int,
    p50: float,
    statuses: dict[int, int],
    error_counts: dict[str, int] | None = None,
    seconds: float = 30.0,
) -> EndpointSummary:
    latency = Percentiles(
        p50=p50,
        p90=p50 * 3,
        p95=p50 * 4,
        p99=p50 * 9,
        p999=p50 * 15,
        max=p50 * 30,
        mean=p50 * 1.4,
        count=requests,
    )
    ttfb = Percentiles(p50=p50 * 0.8, p95=p50 * 3.5, p99=p50 * 8, max=p50 * 25, count=requests)
    return EndpointSummary(
        name=name,
        requests=requests,
        errors=errors,
        rps=requests / seconds,
        interval_rps=requests / seconds,
        error_rate=errors / requests if requests else 0.0,
        status_counts=statuses,
        error_counts=error_counts or {},
        bytes=requests * 512,
        latency_ms=latency,
        service_ms=latency,
        ttfb_ms=ttfb,
    )


def sample_snapshot(**changes: object) -> Snapshot:
    """A fixed 30-second run of three endpoints: no clocks, no randomness."""
    endpoints = (
        summary("list items", 5120, 0, 3.1, {200: 5120}),
        summary("create item", 2048, 51, 6.4, {201: 1997, 500: 7}, {"timeout": 44}),
        summary("get item", 4096, 12, 2.2, {200: 4084, 404: 12}),
    )
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    for ep in endpoints:
        for code, n in ep.status_counts.items():
            statuses[code] = statuses.get(code, 0) + n
        for name, n in ep.error_counts.items():
            if n:
                errors[name] = errors.get(name, 0) + n
    total = summary(
        "total",
        sum(e.requests for e in endpoints),
        sum(e.errors for e in endpoints),
        3.0,
        statuses,
        errors,
    )
    # What the 44 timeouts said, as the client words it (the Overview lists the top ones).
    total = replace(total, error_messages={"timeout: no complete answer within the timeout": 44})
    timeline = tuple(
        TimelinePoint(
            t=float(s),
            span=1.0,
            requests=int(370 + 60 * math.sin(s / 4)),
            rps=370 + 60 * math.sin(s / 4),
            errors=int(2 + 2 * math.sin(s / 3) ** 2),
            p50=3 + math.sin(s / 5),
            p95=12 + 4 * math.sin(s / 5),
            p99=27 + 9 * math.sin(s / 6),
            users=10 if s < 5 else 12,
        )
        for s in range(1, 31)
    )
    values: dict[str, object] = dict(
        elapsed=30.4,
        state=RUNNING,
        model="closed",
        target="http://127.0.0.1:8765",
        users=12,
        active_users=12,
        rate=None,
        in_flight=7,
        total=total,
        endpoints=endpoints,
        timeline=timeline,
        control_log=(
            ControlEvent(5.0, "users", 12.0),
            ControlEvent(12.5, "pause"),
            ControlEvent(14.0, "resume"),
        ),
        thresholds=(
            ThresholdResult("p95 < 500ms", None, 12.0, True),
            ThresholdResult("error_rate < 0.5%", None, 0.0057, False),
        ),
        latency_buckets=buckets(0.4, 400.0, 2400),
        recent_latency_buckets=buckets(0.4, 400.0, 700, shift=0.1),
        # The last 10 s had answers (the buckets above): their percentiles are figures too.
        recent_latency_ms=summary("recent", 2000, 0, 4.5, {200: 2000}).latency_ms,
        health=GeneratorHealth(loop_lag_ms=1.2, send_lag_ms=0.4, cpu_percent=35.0),
    )
    values.update(changes)
    return Snapshot(**values)  # type: ignore[arg-type]


def sample_target_metrics(fail_last: bool = False) -> MetricsSnapshot:
    """Thirty scrapes of two series, the 20th failed (and the last too, if ``fail_last``)."""
    failed = {20, 30} if fail_last else {20}
    error = "HTTP 500 from http://127.0.0.1:8765/metrics"

    def point(t: int, value: float) -> MetricPoint:
        return (
            MetricPoint(float(t), None, ok=False, error=error)
            if t in failed
            else MetricPoint(float(t), value)
        )

    requests = tuple(point(t, 380 + 50 * math.sin(t / 4)) for t in range(2, 31))
    latency = tuple(point(t, 0.012 + 0.004 * math.sin(t / 5)) for t in range(2, 31))
    return MetricsSnapshot(
        url="http://127.0.0.1:8765/metrics",
        t=30.0,
        scrapes=30,
        failures=len(failed),
        last_error=error,
        series=(
            SeriesHistory("http_requests_total", "rate", "/s", requests),
            SeriesHistory("p95(http_request_duration_seconds)", "p95", "s", latency),
        ),
        scrape_points=tuple(point(t, 0.003) for t in range(1, 31)),
    )


class FixedMonitor:
    """A host monitor with a fixed history: the host pane looks the same on every machine."""

    def __init__(self, target: bool = True) -> None:
        self.history: deque[HostSample] = deque(maxlen=120)
        for i in range(40):
            self.history.append(
                HostSample(
                    cpu_per_core=(20 + 30 * abs(math.sin(i / 6)), 35.0, 80.0, 10.0),
                    memory_percent=40 + i / 4,
                    memory_used=int((6 + i / 40) * 2**30),
                    memory_total=16 * 2**30,
                    target=ProcessSample(4242, "backend", 55.0, 300 * 2**20) if target else None,
                )
            )

    def sample(self) -> HostSample:
        return self.history[-1]


def screen_text(app: App) -> str:
    """The whole screen as plain text, exactly as drawn (what a user would read)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run until ``condition`` holds; fail with a clear message after ``timeout`` s
    of wall time (a step count would stretch with every slow ``pilot.pause``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        await pilot.pause(0.05)


def write_profile(
    directory: Path,
    base_url: str,
    *,
    name: str = "UI test",
    users: int = 2,
    duration: str = "8s",
    extra: str = "",
) -> Path:
    """A two-endpoint profile against the test server (GET and POST /ok).

    Think time keeps the load light (about 40 requests/s): the test server shares this
    process with the app under test, and Pilot waits after every key press until the
    process is idle (up to a second each): under a heavier load every key cost that second,
    and typing nine letters into the palette took 20 s.
    """
    path = directory / "ui-test.toml"
    path.write_text(
        f'name = "{name}"\nbase_url = "{base_url}"\nthresholds = ["p95 < 5s"]\n{extra}\n'
        f'[load]\nusers = {users}\nduration = "{duration}"\n\n'
        '[[endpoints]]\nname = "read ok"\npath = "/ok"\nthink = "50ms"\n\n'
        '[[endpoints]]\nname = "write ok"\nmethod = "POST"\npath = "/ok"\nbody = "x"\nthink = "50ms"\n',
        encoding="utf-8",
    )
    return path


def console(
    profile: Path, tmp_path: Path, max_duration: float = 20.0, **overrides: object
) -> StressDeckApp:
    """The console on ``profile``, as a test drives it: a fixed host sample, and sessions
    and profiles under the test's own directory."""
    source = PlanSource.from_file(profile, Overrides(**overrides), max_duration=max_duration)
    return StressDeckApp(
        source,
        ConsoleOptions(
            monitor=FixedMonitor(), sessions_dir=tmp_path / "sessions", profiles_dir=tmp_path
        ),
    )


async def start(app: StressDeckApp, pilot: Pilot) -> None:
    """Press s as a person does, once the dashboard is drawn; return once requests count."""
    await wait_for(pilot, lambda: app.renders > 0)
    await pilot.press("s")
    await wait_for(
        pilot, lambda: app.controller is not None and app.controller.latest().total.requests > 0
    )
