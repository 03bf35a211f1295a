"""The console's pure parts without a terminal: formatting, the event tracker, chart maths,
session names, pre-run load changes and the host monitor."""

from __future__ import annotations

import os
import re
from pathlib import Path

import psutil
import pytest
from test_ui_support import buckets, sample_snapshot, write_profile

from stressdeck.core.errors import InputError
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.plan import CEILING_USERS
from stressdeck.engine.snapshot import (
    STOPPED,
    ControlEvent,
    EndpointSummary,
    GeneratorHealth,
    HistogramBucket,
)
from stressdeck.observe.monitor import HostMonitor, check_pid
from stressdeck.profiles.thresholds import ThresholdResult
from stressdeck.ui.controller import ControlError, RunController
from stressdeck.ui.events import ERROR, INFO, WARN, EventTracker
from stressdeck.ui.format import bar, clock, count, ms, percent, safe, size, sparkline
from stressdeck.ui.planning import PlanSource, adhoc_profile, describe_load, idle_snapshot
from stressdeck.ui.screens.dialogs import check_session_name
from stressdeck.ui.widgets.charts import MARK_STYLES, bucket_position, histogram_rows
from stressdeck.ui.widgets.header import RunInfo, header_text
from stressdeck.ui.widgets.tables import endpoint_row


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "-"),
        (0.123, "0.12ms"),
        (3.14159, "3.1ms"),
        (123.4, "123ms"),
        (12_345, "12.3s"),
    ],
)
def test_ms(value: float, shown: str) -> None:
    assert ms(value) == shown


@pytest.mark.parametrize(
    ("function", "value", "shown"),
    [
        (count, 12_345, "12,345"),
        (count, 123_456, "123k"),
        (count, 12_345_678, "12.3M"),
        (percent, 0, "0%"),
        (percent, 0.0057, "0.57%"),
        (percent, 0.25, "25.0%"),
        (clock, 0, "0:00"),
        (clock, 75.9, "1:15"),
        (clock, 3725, "1:02:05"),
        (size, 512, "512B"),
        (size, 3 * 2**20, "3.0MiB"),
        (size, 5 * 2**30, "5.0GiB"),
    ],
)
def test_formatters(function, value: float, shown: str) -> None:
    assert function(value) == shown


def test_sparkline_and_bar_scale_and_fit() -> None:
    assert sparkline([0, 50, 100], 10, top=100) == "▁▅█"
    assert sparkline(list(range(100)), 5) == "█████"  # only the last five, scaled to their own max
    assert sparkline([], 5) == ""
    assert bar(0.5, 10) == "█████░░░░░"
    assert bar(2.0, 4) == "████"


def test_safe_text_never_carries_markup_or_escapes() -> None:
    text = safe("[bold red]boom[/] \x1b[31mred")
    assert text.plain == "[bold red]boom[/] \\x1b[31mred"
    assert not text.spans


def test_endpoint_row_cells_are_literal_text() -> None:
    cells = endpoint_row(EndpointSummary("[b]x[/b]", requests=1234, errors=1, error_rate=0.5))
    assert [c.plain for c in cells[:4]] == ["[b]x[/b]", "1,234", "0.0", "50.0%"]


def test_event_tracker_says_each_thing_once() -> None:
    tracker = EventTracker()
    first = tracker.update(sample_snapshot())
    texts = [e.text for e in first]
    assert texts[:3] == ["users set to 12", "pause", "resume"]
    assert "first HTTP 500 response" in texts and "first timeout error" in texts
    assert any(
        e.level == ERROR
        and e.text.startswith("threshold failing: error_rate < 0.5%")
        and "0.57%" in e.text
        for e in first
    )
    assert tracker.update(sample_snapshot()) == []  # nothing new

    recovered = sample_snapshot(
        thresholds=(ThresholdResult("error_rate < 0.5%", None, 0.001, True),),
        control_log=sample_snapshot().control_log + (ControlEvent(31.0, "users", 20.0),),
        state=STOPPED,
        stop_reason="duration reached",
    )
    levels = {e.text: e.level for e in tracker.update(recovered)}
    assert levels == {
        "users set to 20": INFO,
        "threshold passing again: error_rate < 0.5%": INFO,
        "run stopped: duration reached; thresholds passed": INFO,
    }
    tracker.reset()
    assert len(tracker.update(sample_snapshot())) == len(first)


def test_event_tracker_does_not_repeat_saturation_every_tick() -> None:
    from stressdeck.engine.snapshot import GeneratorHealth

    tracker = EventTracker()
    tracker.update(sample_snapshot())
    hot, cool = GeneratorHealth(loop_lag_ms=80), GeneratorHealth()
    said = []
    for i in range(20):  # flipping every tick for 10 s: one warning, not ten
        said += tracker.update(
            sample_snapshot(elapsed=31 + i / 2, health=hot if i % 2 == 0 else cool)
        )
    assert [e.level for e in said] == [WARN]


@pytest.mark.parametrize(
    ("value", "where"), [(1.0, -0.5), (2.0, 0.5), (3.0, 0.5 + 0.5849625), (99.0, None)]
)
def test_bucket_position_is_logarithmic_within_a_bucket(value: float, where: float | None) -> None:
    buckets = (HistogramBucket(1.0, 2.0, 5), HistogramBucket(2.0, 4.0, 3))
    got = bucket_position(buckets, value)
    assert (got is None) if where is None else got == pytest.approx(where, abs=1e-3)


def test_histogram_bars_scale_to_the_tallest_with_the_mark_in_its_bucket() -> None:
    counts = (
        HistogramBucket(1.0, 2.0, 10),
        HistogramBucket(2.0, 4.0, 5),
        HistogramBucket(4.0, 8.0, 0),
    )
    marks = (("p50", 3.0),)  # in the second bucket, past its middle on a log scale
    rows = histogram_rows(counts, marks, 40, 11, ("requests by latency",))
    lines = ["".join(text for text, _ in row) for row in rows]
    assert lines[0].strip() == "requests by latency"
    plot, axis, labels = lines[1:-2], lines[-2], lines[-1]
    assert len(plot) == 8 and all(len(line) <= 40 for line in lines)
    left = axis.index("└") + 1
    starts = [left + i for i, c in enumerate(axis[left:]) if c == "┬"]
    assert len(starts) == 3  # wide enough: every bucket labelled, under its first column

    def column(x: int) -> str:
        return "".join(line[x] for line in plot)

    assert column(starts[0]) == "█" * 8  # the tallest is full height
    assert column(starts[1]) == " " * 4 + "█" * 4  # half of it, half the height
    assert column(starts[2]) == " " * 8
    # The p50 line: its colour down one column of its bucket's bar, a line above the bar.
    marked = [
        (x, text)
        for row in rows[1:-2]
        for x, (text, style) in zip(_run_starts(row), row, strict=True)
        if style == MARK_STYLES[0]
    ]
    assert len(marked) == 8 and len({x for x, _ in marked}) == 1
    x = marked[0][0]
    assert starts[1] < x < starts[2] and column(x) == "│" * 4 + "█" * 4
    assert labels.split() == ["1.0ms", "2.0ms", "4.0ms"]
    # A run per style, not a segment per cell: the axis, the bars, the mark, the bars.
    assert all(len(row) <= 4 for row in rows)


def _run_starts(row: list[tuple[str, object]]) -> list[int]:
    starts, x = [], 0
    for text, _ in row:
        starts.append(x)
        x += len(text)
    return starts


@pytest.mark.parametrize(("width", "height"), [(20, 6), (33, 8), (51, 13), (91, 29), (160, 40)])
def test_histogram_fits_its_box_with_labels_apart(width: int, height: int) -> None:
    marks = (("p50", 2.0), ("p95", 9.0), ("p99", 30.0))
    rows = histogram_rows(buckets(0.4, 400.0, 2400), marks, width, height, ("title",))
    lines = ["".join(text for text, _ in row) for row in rows]
    assert len(lines) == height and all(len(line) <= width for line in lines)
    axis, labels = lines[-2], lines[-1]
    words = list(re.finditer(r"\S+", labels))
    assert len(words) >= 2 and all(axis[word.start()] == "┬" for word in words)
    assert all(b.start() - a.end() >= 2 for a, b in zip(words, words[1:], strict=False))
    # Each percentile in its own colour, however close; never a run per cell.
    styles = {style for row in rows for _, style in row}
    assert set(MARK_STYLES) <= styles
    assert all(len(row) <= 2 + 2 * len(marks) for row in rows)


def test_session_names(tmp_path: Path) -> None:
    assert check_session_name("run.toml", tmp_path) == tmp_path / "run.toml"
    assert check_session_name(" run.JSON ", tmp_path) == tmp_path / "run.JSON"
    assert check_session_name("elsewhere/run.toml", tmp_path) == Path("elsewhere/run.toml")
    for bad in ("", "run.txt", "run"):
        with pytest.raises(ValueError):
            check_session_name(bad, tmp_path)


def test_load_keys_before_a_run_rebuild_the_plan(tmp_path: Path) -> None:
    source = PlanSource.from_file(write_profile(tmp_path, "http://127.0.0.1:9"), Overrides(users=3))
    controller = RunController(source)
    assert controller.change_users(delta=1) == 4
    assert controller.change_users(factor=2.0) == 8
    assert controller.change_users(factor=0.01) == 1  # never below one user for a run to start
    assert controller.plan.overrides.users == 1
    with pytest.raises(ControlError, match="closed model"):
        controller.change_rate(1.1)
    with pytest.raises(ControlError, match="start a run"):
        controller.toggle_pause()
    controller.choose_preset("spike")
    assert controller.plan.load.preset == "spike" and "preset spike" in describe_load(
        controller.plan
    )
    controller.choose_preset(None)
    assert controller.plan.load.preset is None


def test_open_model_uses_rate_keys(tmp_path: Path) -> None:
    source = PlanSource.from_file(
        write_profile(tmp_path, "http://127.0.0.1:9"), Overrides(model="open", rate=50.0)
    )
    controller = RunController(source)
    assert controller.change_rate(1.1) == 55.0
    assert controller.change_rate(0.9) == 49.5
    with pytest.raises(ControlError, match="open model"):
        controller.change_users(delta=1)
    assert idle_snapshot(controller.plan).rate == 49.5


def test_adhoc_profile() -> None:
    profile = adhoc_profile("post", "http://127.0.0.1:9/api/items?x=1")
    assert profile.endpoints[0].name == "POST /api/items" and profile.endpoints[0].method == "POST"
    with pytest.raises(InputError, match="method"):
        adhoc_profile("FETCH", "http://127.0.0.1:9/")
    with pytest.raises(InputError, match="url"):
        adhoc_profile("GET", "  ")


def test_host_monitor_samples_without_blocking_and_keeps_a_bounded_history() -> None:
    monitor = HostMonitor(target_pid=os.getpid(), history=3)
    for _ in range(5):
        sample = monitor.sample()
    assert len(sample.cpu_per_core) == psutil.cpu_count()
    assert 0 < sample.memory_percent < 100 and sample.memory_total > sample.memory_used > 0
    assert sample.target is not None and sample.target.alive and sample.target.rss_bytes > 0
    assert len(monitor.history) == 3


def test_host_monitor_reports_a_target_that_went_away() -> None:
    sample = HostMonitor(target_pid=2**22 + 12345).sample()
    assert sample.target is not None and not sample.target.alive
    with pytest.raises(ValueError, match="no process"):
        check_pid(2**22 + 12345)


def test_i_know_is_kept_by_every_plan_a_source_builds(tmp_path: Path) -> None:
    from stressdeck.ui.screens.picker import scan_profiles

    write_profile(tmp_path, "http://127.0.0.1:9", users=3000)
    [refused] = scan_profiles(tmp_path, Overrides())
    assert refused.source is None and "safety cap" in refused.error
    [entry] = scan_profiles(tmp_path, Overrides(), i_know=True)
    assert entry.source is not None and entry.source.build().max_users == CEILING_USERS
    assert entry.source.with_overrides(users=4000).build().load.users == 4000


@pytest.mark.parametrize(
    ("typed", "series"),
    [
        ("", ()),
        ("a_total", ("a_total",)),
        ("a_total, b ; c", ("a_total", "b", "c")),
        ('p95(x{a="1",b="2"}), y', ('p95(x{a="1",b="2"})', "y")),
        ('x{a="q\\",r"}, y', ('x{a="q\\",r"}', "y")),
    ],
)
def test_split_series_splits_only_between_series(typed: str, series: tuple[str, ...]) -> None:
    from stressdeck.ui.screens.dialogs import split_series

    assert split_series(typed) == series


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (None, "/s", "-"),
        (289.4, "/s", "289/s"),
        (0.0123, "s", "12.3ms"),
        (3 * 2**20, "B", "3.0MiB"),
        (7, "", "7"),
        (21.5, "°C", "21.5°C"),
    ],
)
def test_metric_value_in_its_unit(value: float | None, unit: str, shown: str) -> None:
    from stressdeck.ui.widgets.target import metric_value

    assert metric_value(value, unit) == shown


def test_target_text_names_a_failed_scrape_literally() -> None:
    from dataclasses import replace

    from test_ui_support import sample_target_metrics

    from stressdeck.ui.widgets.target import target_text

    metrics = sample_target_metrics(fail_last=True)
    hostile = replace(
        metrics,
        scrape_points=(
            *metrics.scrape_points[:-1],
            replace(metrics.scrape_points[-1], error="[red]x\x1b[2J"),
        ),
    )
    text = target_text(hostile, None, ())
    assert "⚠ scrape failed: [red]x\\x1b[2J" in text.plain
    assert target_text(None, None, ()).plain.startswith("no metrics URL")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("api.localhost", True),
        ("10.255.255.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    from stressdeck.core.hosts import is_loopback

    assert is_loopback(host) is loopback


def test_known_hosts_are_remembered_per_profile(tmp_path: Path) -> None:
    import json

    from stressdeck.ui.known_hosts import KnownHosts

    (tmp_path / "near").mkdir()
    (tmp_path / "other").mkdir()
    # Plans are only built, never run; 127.0.0.2 plays a remote host (only 127.0.0.1 is "local").
    far = PlanSource.from_file(write_profile(tmp_path, "http://127.0.0.2:9")).build()
    near = PlanSource.from_file(write_profile(tmp_path / "near", "http://127.0.0.1:9")).build()
    other = PlanSource.from_file(write_profile(tmp_path / "other", "http://127.0.0.2:9")).build()
    known = KnownHosts(
        tmp_path / "sessions" / ".known-hosts.json", is_local=lambda host: host == "127.0.0.1"
    )
    assert known.to_confirm(far) == ["127.0.0.2"] and known.to_confirm(near) == []
    known.remember(far, ["127.0.0.2"])
    assert known.to_confirm(far) == []
    assert known.to_confirm(other) == ["127.0.0.2"]  # another profile asks for itself
    document = json.loads(known.path.read_text(encoding="utf-8"))
    assert document == {str((tmp_path / "ui-test.toml").resolve()): ["127.0.0.2"]}
    known.path.write_text("{not json", encoding="utf-8")  # damaged: ask again, never crash
    assert known.to_confirm(far) == ["127.0.0.2"]


def test_each_header_warning_has_its_own_line() -> None:
    """A saturation warning fills an 80-column line: TLS checks off must not be cut off its end."""
    both = sample_snapshot(health=GeneratorHealth(loop_lag_ms=120.0, cpu_percent=97.0))
    lines = header_text(both, RunInfo("p", insecure=True)).plain.splitlines()
    assert len(lines) == 5
    assert lines[3].startswith("⚠ generator saturated: loop lag 120ms, cpu 97%")
    assert lines[4] == "⚠ TLS verification off"
    assert len(header_text(sample_snapshot(), RunInfo("p")).plain.splitlines()) == 3


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8080/", True),
        ("http://[::1]:80/x", True),
        ("https://localhost:5", True),
        ("http://127.0.0.1:1@example.com/", False),  # the host an HTTP client uses is example.com
        ("http://u:p@127.0.0.1:1/", False),
        ("ftp://127.0.0.1/", False),
        ("http://127.0.0.1:99999/", False),
        ("http://example.com/", False),
    ],
)
def test_is_loopback_url_reads_the_host_as_a_client_does(url: str, loopback: bool) -> None:
    """The benchmarks' guard: a URL that only starts like a loopback one is refused."""
    from stressdeck.core.hosts import is_loopback_url

    assert is_loopback_url(url) is loopback
