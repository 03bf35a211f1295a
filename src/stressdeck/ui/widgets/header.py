"""The status header: state, time, load, results, the load shape, thresholds, warnings.

Laid out by priority for the width it has: each line is a list of parts, each with a
priority and, for some, a shorter form. When a line is too long the least important part
gets its short form, then goes; so at 80 columns the state, elapsed / duration, load, RPS,
p95, errors and the preset or stage always show, and the profile's name and target give way
first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from stressdeck.core.text import printable
from stressdeck.engine.snapshot import IDLE, PAUSED, RUNNING, STOPPED, STOPPING, Snapshot
from stressdeck.ui.format import clock, count, ms, percent, rate, safe
from stressdeck.ui.format import latency as latency_text

STATE_STYLES = {
    IDLE: "bold white on grey37",
    RUNNING: "bold black on green",
    PAUSED: "bold black on yellow",
    STOPPING: "bold black on dark_orange",
    STOPPED: "bold white on blue",
}
GAP = "  "
WIDTH = 78  # an 80-column terminal less the header's padding, until the widget knows better


@dataclass(frozen=True)
class RunInfo:
    """What the header needs besides the snapshot: the plan's side of the story."""

    name: str
    duration: float | None = None
    next_load: str = ""  # the next run's load, when it differs from what is shown
    insecure: bool = False
    preset: str | None = None
    stages: int = 0
    requests: int | None = None  # a request budget instead of a duration
    not_answering: str | None = None  # why the target looks dead (see ui.answering)
    replay_of: str | None = None  # the session this run replays (its first run only)
    search: str | None = None  # what a find-limit is doing, or what it found


@dataclass(frozen=True)
class Part:
    """A piece of a header line; lower ``priority`` is kept longer. ``short`` replaces the
    text before the part is dropped; ``cut`` parts are shortened to fit instead."""

    text: Text
    priority: int
    short: Text | None = None
    cut: bool = False


def fit(parts: Sequence[Part], width: int) -> Text:
    """The parts that fit in ``width`` cells, in their order, least important going first."""
    texts = {i: part.text for i, part in enumerate(parts)}

    def length() -> int:
        return sum(t.cell_len for t in texts.values()) + len(GAP) * max(len(texts) - 1, 0)

    by_priority = sorted(range(len(parts)), key=lambda i: -parts[i].priority)
    for index in by_priority:  # first the short forms, least important first
        if length() <= width:
            break
        short = parts[index].short
        if short is not None:
            texts[index] = short
    for index in by_priority:  # then cut what may be cut, or drop
        over = length() - width
        if over <= 0:
            break
        text = texts[index]
        if parts[index].cut and text.cell_len - over >= 12:
            text = text.copy()
            text.truncate(text.cell_len - over, overflow="ellipsis")
            texts[index] = text
        else:
            del texts[index]
    line = Text()
    for n, index in enumerate(sorted(texts)):
        if n:
            line.append(GAP)
        line.append_text(texts[index])
    return line


def actual_rps(snap: Snapshot) -> float:
    """RPS of the last complete second; the last tick's before the first second closes; the
    whole run's once it stopped (its last point is a partial second, noisy as a rate); none
    while paused (the clock stands still, so the last second would stay on screen)."""
    if snap.state == STOPPED:
        return snap.total.rps
    if snap.state == PAUSED:
        return 0.0
    return snap.timeline[-1].rps if snap.timeline else snap.total.interval_rps


def warnings(snap: Snapshot, insecure: bool = False) -> list[Text]:
    """What makes the figures or the run unsafe to trust, worst first; none when all is well."""
    parts: list[Text] = []
    health = snap.health
    if snap.stalled:
        workers = ", ".join(str(w) for w in snap.stalled)
        parts.append(
            Text(
                f"⚠ worker {workers} stalled: no report for a while (its figures are missing)",
                style="bold white on red",
            )
        )
    elif snap.finished and health.unaccounted:
        parts.append(
            Text(f"⚠ {health.unaccounted} requests unaccounted", style="bold white on red")
        )
    if health.saturated:
        lag = f"loop lag {ms(health.loop_lag_ms)}"
        if health.send_lag_ms > 50:
            lag += f", send lag {ms(health.send_lag_ms)}"
        parts.append(
            Text(
                f"⚠ generator saturated: {lag}, cpu {health.cpu_percent:.0f}%"
                " (figures measure the load tool)",
                style="bold black on yellow",
            )
        )
    limited = snap.bottleneck
    if limited.kind in ("target", "connections"):
        # The generator's case is the saturation warning above.
        # One line of the header: the summary and the results hold the whole evidence (a
        # saved session's may come from anywhere: escaped).
        evidence = printable(limited.evidence, 56)
        parts.append(Text(f"limited by the {limited.kind}: {evidence}", style="bold black on cyan"))
    if insecure:
        parts.append(Text("⚠ TLS verification off", style="bold black on dark_orange"))
    return parts


def time_part(snap: Snapshot, info: RunInfo) -> Part:
    """Elapsed on the run's clock, against the duration or the request budget."""
    if info.requests is not None:
        done = snap.total.requests + snap.total.skipped
        return Part(Text(f"{clock(snap.elapsed)}  {count(done)}/{count(info.requests)} req"), 0)
    total = f" / {clock(info.duration)}" if info.duration else ""
    return Part(Text(f"{clock(snap.elapsed)}{total}"), 0)


def shape_part(snap: Snapshot, info: RunInfo) -> Part | None:
    """The load shape: the preset and its stage, stages, or manual after a live change."""
    stage = ""
    if snap.stage is not None and info.stages:
        stage = f"stage {snap.stage + 1}/{info.stages}"
    elif snap.stage is not None:
        stage = f"stage {snap.stage + 1}"
    if info.preset:
        label = f"{info.preset} preset" + (f" {stage}" if stage else "")
        manual = " (manual)" if snap.manual else ""
        return Part(Text(label + manual, "bold magenta"), 1, short=Text(info.preset, "magenta"))
    if stage:
        return Part(Text(stage, "magenta"), 1)
    if snap.manual:
        return Part(Text("manual", "italic"), 3)
    return None


def load_parts(snap: Snapshot) -> list[Part]:
    rps = rate(actual_rps(snap))
    if snap.model == "open":
        parts = [
            Part(Text.assemble(("rate ", ""), (f"{rate(snap.rate)}/s", "bold")), 0),
            Part(Text(f"actual {rps}/s"), 0, short=Text(f"{rps} rps")),
        ]
        if snap.total.dropped:
            parts.append(Part(Text(f"dropped {count(snap.total.dropped)}", "bold red"), 1))
    else:
        # An ended run has no user active any more, whatever its last tick said.
        active = 0 if snap.finished else snap.active_users
        parts = [
            Part(
                Text.assemble(("users ", ""), (str(snap.users), "bold"), f" ({active} active)"),
                0,
                short=Text.assemble(("users ", ""), (str(snap.users), "bold")),
            ),
            Part(Text(f"{rps} rps"), 0),
        ]
    return parts


def results_parts(snap: Snapshot, recent: bool = False) -> list[Part]:
    """p95 and errors of the window the histogram shows (``h``): the whole run, or the last
    10 closed seconds, labelled so: the Endpoints table's TOTAL row, figure for figure."""
    total = snap.recent_total if recent and snap.recent_total is not None else snap.total
    latency, errors = total.latency_ms, total.error_rate
    window = "·10s" if total is snap.recent_total else ""
    error_style = "bold red" if errors >= 0.01 else "yellow" if errors else ""
    # An ended run has nothing in flight: what was, at the stop, is counted as cancelled.
    in_flight = 0 if snap.finished else snap.in_flight
    return [
        Part(Text(f"p95{window} {latency_text(latency.p95, latency.measured, total.requests)}"), 0),
        Part(Text(f"err{window} {percent(errors)}", error_style), 0),
        Part(Text(f"in flight {in_flight}", "dim"), 4, short=Text(f"⇄{in_flight}", "dim")),
    ]


def header_text(snap: Snapshot, info: RunInfo, width: int = WIDTH, recent: bool = False) -> Text:
    """Three lines fitted to ``width`` (who, where and when; the load and its results; the
    verdicts), then one line per warning, so none is cut off the end of another.
    ``recent``: p95 and errors of the last 10 s, not the whole run."""
    state = Text(f" {snap.state.upper()} ", STATE_STYLES.get(snap.state, "bold"))
    line1: list[Part] = [Part(state, 0)]
    if info.replay_of:
        # Never dropped: figures of a replay are read against the original's.
        line1.append(Part(Text(" REPLAY ", "bold black on cyan"), 0))
    line1.append(time_part(snap, info))
    if snap.state == PAUSED:
        line1.append(Part(Text(f"paused {clock(snap.paused_for)}", "bold yellow"), 0))
    elif snap.paused_seconds >= 1:
        line1.append(Part(Text(f"(paused {clock(snap.paused_seconds)})", "dim"), 5))
    line1.append(Part(Text(snap.model, "dim"), 6))
    where = Text.assemble(
        safe(info.name, "bold", limit=60), " → ", safe(snap.target, "cyan", limit=80)
    )
    line1.append(Part(where, 8, cut=True))

    line2: list[Part] = [*load_parts(snap), *results_parts(snap, recent)]
    shape = shape_part(snap, info)
    if shape is not None:
        line2.append(shape)

    line3: list[Part] = []
    if info.search:
        line3.append(Part(safe(info.search, "bold magenta", limit=120), 0, cut=True))
    if info.not_answering:
        alert = Text(f"⚠ target not answering: {info.not_answering}", "bold white on red")
        line3.append(Part(alert, 0, cut=True))
    if not (info.search and not snap.thresholds):
        # A search's SLOs are what the run is held to, not its thresholds: "none" would say
        # nothing is checked.
        line3.append(threshold_part(snap))
    if snap.state == STOPPED and snap.stop_reason:
        line3.append(Part(safe(snap.stop_reason, "italic", limit=60), 2, cut=True))
    if info.next_load:
        line3.append(
            Part(
                Text("next run: " + info.next_load, "dim"),
                2,
                short=Text("next: " + info.next_load, "dim"),
                cut=True,
            )
        )
    lines = [fit(line1, width), fit(line2, width), fit(line3, width)]
    return Text("\n").join([*lines, *warnings(snap, info.insecure)])


def threshold_part(snap: Snapshot) -> Part:
    if not snap.thresholds:
        return Part(Text("thresholds: none", style="dim"), 6)
    # Nothing measured yet is pending while the run goes; at its end it failed (no data).
    if all(t.value is None and t.ok for t in snap.thresholds):
        text = Text("thresholds: ", style="dim")
        text.append_text(safe(", ".join(t.expr for t in snap.thresholds), "dim", limit=60))
        return Part(text, 5, short=Text(f"{len(snap.thresholds)} thresholds", "dim"), cut=True)
    failed = [t for t in snap.thresholds if not t.ok]
    n = len(snap.thresholds)
    if not failed:
        passed = [t for t in snap.thresholds if t.value is not None]
        waiting = n - len(passed)
        return Part(
            Text(
                f"✔ thresholds {len(passed)}/{n} pass"
                + (f", {waiting} no data yet" if waiting else ""),
                style="bold green",
            ),
            3,
            short=Text(f"✔ {len(passed)}/{n}", "bold green"),
        )
    text = Text(f"✘ {len(failed)}/{n} thresholds fail: ", style="bold red")
    first = failed[0]
    text.append_text(
        safe(first.expr + (f" ({first.endpoint})" if first.endpoint else ""), "red", limit=50)
    )
    if first.value is None:
        text.append(" (no data)", "red")
    return Part(text, 1, short=Text(f"✘ {len(failed)}/{n} fail", "bold red"), cut=True)


def threshold_text(snap: Snapshot) -> Text:
    """The thresholds' verdict in full (the log and tests read it)."""
    return threshold_part(snap).text


class StatusHeader(Static):
    """Pushed a snapshot and the run's info; renders three no-wrap lines, plus one per
    warning, laid out for the width it has (again on a resize)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._last: tuple[Snapshot, RunInfo] | None = None
        self._drawn: Text | None = None
        self.recent = False  # p95 and errors of the last 10 s (``h``), not the whole run

    def show(self, snap: Snapshot, info: RunInfo, recent: bool = False) -> None:
        self._last = (snap, info)
        self.recent = recent
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        if self._last is None:
            return
        text = header_text(*self._last, width=self.content_size.width or WIDTH, recent=self.recent)
        if self._drawn is not None and text == self._drawn:
            return  # an unchanged header costs no frame
        # A new layout of the screen only when the header grows or shrinks (a warning comes
        # or goes): laying out every pane four times a second is most of a frame's cost.
        layout = self._drawn is None or self._drawn.plain.count("\n") != text.plain.count("\n")
        self._drawn = text
        self.update(text, layout=layout)
