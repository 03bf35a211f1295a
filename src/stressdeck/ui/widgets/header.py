"""The status header: target, state, elapsed, load (target and actual), thresholds, warnings."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from stressdeck.engine.snapshot import IDLE, PAUSED, RUNNING, STOPPED, STOPPING, Snapshot
from stressdeck.ui.format import clock, ms, percent, rate, safe

STATE_STYLES = {
    IDLE: "bold white on grey37",
    RUNNING: "bold black on green",
    PAUSED: "bold black on yellow",
    STOPPING: "bold black on dark_orange",
    STOPPED: "bold white on blue",
}


def actual_rps(snap: Snapshot) -> float:
    """RPS of the last complete second; the last tick's before the first second closes; the
    whole run's once it stopped (its last point is a partial second, noisy as a rate)."""
    if snap.state == STOPPED:
        return snap.total.rps
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
    if insecure:
        parts.append(Text("⚠ TLS verification off", style="bold black on dark_orange"))
    return parts


def header_text(
    snap: Snapshot, name: str, duration: float | None, next_load: str = "", insecure: bool = False
) -> Text:
    """Three lines: who and where; the load; thresholds. Then one line per warning (a
    saturated generator, TLS checks off), so none is cut off the end of another line."""
    line1 = Text.assemble(
        (f" {snap.state.upper()} ", STATE_STYLES.get(snap.state, "bold")),
        " ",
        safe(name, "bold", limit=40),
        " → ",
        safe(snap.target, "cyan", limit=60),
    )
    total = f" / {clock(duration)}" if duration else ""
    line1.append(f"  {clock(snap.elapsed)}{total}")

    line2 = Text(f"{snap.model}  ")
    if snap.model == "open":
        line2.append(f"rate {rate(snap.rate)}/s", "bold")
        line2.append(f" (actual {rate(actual_rps(snap))}/s)")
        if snap.total.dropped:
            line2.append(f"  dropped {snap.total.dropped}", "bold red")
    else:
        line2.append(f"users {snap.users}", "bold")
        line2.append(f" (active {snap.active_users})  {rate(actual_rps(snap))} rps")
    line2.append(f"  in flight {snap.in_flight}")
    latency = snap.total.latency_ms
    line2.append(f"  p95 {ms(latency.p95)}  err {percent(snap.total.error_rate)}")
    if snap.stage is not None:
        line2.append(f"  stage {snap.stage + 1}")
    elif snap.manual:
        line2.append("  manual", "italic")

    line3 = threshold_text(snap)
    if snap.state == STOPPED and snap.stop_reason:
        line3.append("  ")
        line3.append_text(safe(snap.stop_reason, "italic", limit=60))
    if next_load:
        line3.append("  next run: " + next_load, "dim")
    return Text("\n").join([line1, line2, line3, *warnings(snap, insecure)])


def threshold_text(snap: Snapshot) -> Text:
    if not snap.thresholds:
        return Text("thresholds: none", style="dim")
    # Nothing measured yet is pending while the run goes; at its end it failed (no data).
    if all(t.value is None and t.ok for t in snap.thresholds):
        text = Text("thresholds: ", style="dim")
        text.append_text(safe(", ".join(t.expr for t in snap.thresholds), "dim", limit=60))
        return text
    failed = [t for t in snap.thresholds if not t.ok]
    if not failed:
        passed = [t for t in snap.thresholds if t.value is not None]
        waiting = len(snap.thresholds) - len(passed)
        return Text(
            f"✔ thresholds {len(passed)}/{len(snap.thresholds)} pass"
            + (f", {waiting} no data yet" if waiting else ""),
            style="bold green",
        )
    text = Text(f"✘ {len(failed)}/{len(snap.thresholds)} thresholds fail: ", style="bold red")
    first = failed[0]
    text.append_text(
        safe(first.expr + (f" ({first.endpoint})" if first.endpoint else ""), "red", limit=50)
    )
    if first.value is None:
        text.append(" (no data)", "red")
    return text


class StatusHeader(Static):
    """Pushed a snapshot and the plan's name; renders three no-wrap lines, plus one per warning."""

    def show(
        self,
        snap: Snapshot,
        name: str,
        duration: float | None,
        next_load: str = "",
        insecure: bool = False,
    ) -> None:
        self.update(header_text(snap, name, duration, next_load, insecure))
