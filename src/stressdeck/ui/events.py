"""What changed between two snapshots, as log lines: the console's "recent events".

Pure: fed one snapshot at a time, it remembers what it has already reported (status
codes, error classes, threshold states, control-log entries), so each thing is said once
when it first appears or flips.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stressdeck.engine.snapshot import IDLE, Snapshot
from stressdeck.engine.tls import client_certificate_hint
from stressdeck.profiles.thresholds import LATENCY_METRICS, RATE_METRICS, ThresholdResult
from stressdeck.ui.format import ms, percent, rate

INFO, WARN, ERROR = "info", "warn", "error"
# A generator near its limit flips in and out of "saturated" every tick; one line per
# this many seconds says it without drowning the log (the header shows it live).
SATURATION_REPEAT = 10.0


@dataclass(frozen=True)
class LogEvent:
    offset: float  # seconds into the run, so a log reads the same however it is replayed
    level: str
    text: str


@dataclass
class EventTracker:
    _statuses: set[int] = field(default_factory=set)
    _errors: set[str] = field(default_factory=set)
    _failing: set[tuple[str, str | None]] = field(default_factory=set)
    _controls: int = 0
    _state: str = IDLE
    _saturated: bool = False
    _saturation_said: float | None = None

    def reset(self) -> None:
        """Forget everything: a new run starts."""
        self.__init__()  # type: ignore[misc]

    def update(self, snap: Snapshot) -> list[LogEvent]:
        at = snap.elapsed
        events: list[LogEvent] = []
        for entry in snap.control_log[self._controls :]:
            events.append(LogEvent(entry.offset, INFO, _control_text(entry.command, entry.value)))
        self._controls = len(snap.control_log)
        for code in sorted(set(snap.total.status_counts) - self._statuses):
            level = ERROR if code >= 500 else WARN if code >= 400 else INFO
            events.append(LogEvent(at, level, f"first HTTP {code} response"))
            hint = client_certificate_hint(snap.target, {code: 1})
            if hint is not None:
                events.append(LogEvent(at, WARN, hint))
            self._statuses.add(code)
        for name in sorted(set(snap.total.error_counts) - self._errors):
            events.append(LogEvent(at, ERROR, f"first {name} error"))
            self._errors.add(name)
        events.extend(self._thresholds(at, snap.thresholds))
        if snap.health.saturated and not self._saturated:
            last = self._saturation_said
            if last is None or at - last >= SATURATION_REPEAT:
                self._saturation_said = at
                events.append(
                    LogEvent(
                        at,
                        WARN,
                        "load generator saturated (its numbers measure itself): "
                        f"loop lag {ms(snap.health.loop_lag_ms)}, cpu {snap.health.cpu_percent:.0f}%",
                    )
                )
        self._saturated = snap.health.saturated
        if snap.state != self._state:
            self._state = snap.state
            if snap.finished:
                level = INFO if snap.thresholds_ok else ERROR
                verdict = "thresholds passed" if snap.thresholds_ok else "thresholds FAILED"
                events.append(
                    LogEvent(at, level, f"run stopped: {snap.stop_reason or 'stopped'}; {verdict}")
                )
            else:
                events.append(LogEvent(at, INFO, f"state: {snap.state}"))
        return events

    def _thresholds(self, at: float, results: tuple[ThresholdResult, ...]) -> list[LogEvent]:
        events = []
        for result in results:
            key = (result.expr, result.endpoint)
            where = f" ({result.endpoint})" if result.endpoint else ""
            if not result.ok and key not in self._failing:
                self._failing.add(key)
                events.append(
                    LogEvent(
                        at, ERROR, f"threshold failing: {result.expr}{where} = {_value(result)}"
                    )
                )
            elif result.ok and key in self._failing:
                self._failing.discard(key)
                events.append(LogEvent(at, INFO, f"threshold passing again: {result.expr}{where}"))
        return events


def _value(result: ThresholdResult) -> str:
    """The measured value in the threshold's own unit (error_rate is a fraction, latencies ms)."""
    if result.value is None:
        return "no data"
    metric = result.metric
    if metric in RATE_METRICS:
        return percent(result.value)
    if metric in LATENCY_METRICS:
        return ms(result.value)
    return f"{result.value:.4g}"


def _control_text(command: str, value: float | None) -> str:
    if command == "users" and value is not None:
        return f"users set to {value:.0f}"
    if command == "rate" and value is not None:
        return f"rate set to {rate(value)}/s"
    if command == "resume" and value is not None:
        return f"resume (paused {value:.1f} s, not counted as run time)"
    return command if value is None else f"{command} {value:g}"
