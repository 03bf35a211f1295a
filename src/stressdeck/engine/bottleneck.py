"""What limited the load, named from what was measured: the generator, the connections, the
target, or nothing.

Pure functions over one second's figures (``SecondFigures``). The order of the questions is
the point: a generator short of CPU or event loop measures itself, so it is asked first; then
whether the target's service time (from the actual send, so waiting for a lane is not in it)
rose well above what the same run saw unloaded; only with service time flat do busy
connections explain the wait. Send lag is never evidence against the generator: a request
waiting for a busy connection is late because of the connection or the target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stressdeck.core.fields import Reader

NONE, TARGET, CONNECTIONS, GENERATOR = "none", "target", "connections", "generator"
KINDS = (NONE, TARGET, CONNECTIONS, GENERATOR)
# Which kind a summary names when two held for as many seconds: the generator first (its
# figures measure itself), then the target.
_PRIORITY = {GENERATOR: 3, TARGET: 2, CONNECTIONS: 1, NONE: 0}

# The generator: the same bounds as the saturation warning (GeneratorHealth.saturated).
LOOP_LAG_MS = 50.0
CPU_SHARE = 90.0  # % of one core per process
HOST_BUSY_CPU = 30.0  # a late loop with less CPU of its own than this: the host ran others
# Service time "rose" when it is this many times the run's unloaded figure, and by at least
# RISE_MS: a loopback target at 0.3 ms that answers in 1 ms on a busy machine has not risen.
RISE_FACTOR = 3.0
RISE_MS = 5.0
# Without any sign that the load was held back, only a steep rise names the target.
STEEP_FACTOR = 10.0
STEEP_MS = 50.0
# Connections are all busy when Little's law fills this share of them, or requests waited
# for one (latency from due well above service time from send).
BUSY_SHARE = 0.85
HEADROOM = 1.25  # the --connections suggested carries the rate with a quarter to spare
# A run's summary names a kind that held for at least this many seconds (one noisy second
# never names a culprit), or for every second of a run shorter than that.
MIN_SECONDS = 2


@dataclass(frozen=True)
class Bottleneck:
    """What limited the load (``kind``, one of KINDS) and the figures that say so."""

    kind: str = NONE
    evidence: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "evidence": self.evidence}

    @classmethod
    def from_dict(cls, r: Reader, table: Mapping[str, Any], where: str) -> Bottleneck:
        if not table:
            return cls()
        return cls(
            kind=r.choice(table, "kind", where, KINDS),
            evidence=r.string(table, "evidence", where, default=""),
        )


@dataclass(frozen=True)
class SecondFigures:
    """One second of a run, as measured."""

    model: str  # "open" or "closed"
    requests: int  # completed in this second
    rps: float  # completed per second
    asked_rate: float | None  # open model: the arrival rate asked for
    dropped: int
    latency_p50_ms: float  # from the due time (open model) or the send (closed)
    service_p50_ms: float  # from the actual send
    service_mean_ms: float
    service_low_ms: float  # the second's fastest answer (service time)
    connections: int  # open model: lanes in all; 0 in the closed model
    processes: int
    cpu_percent: float  # the generator's, all processes, % of one core
    # The workers' event loop lag through most of this second (the median tick): one stall
    # of a busy machine is not a generator short of CPU, a loop late all second is.
    loop_lag_ms: float
    users: int = 0  # closed model: the users asked for


@dataclass(frozen=True)
class Unloaded:
    """The run's lowest service time so far, and the throughput it was seen at."""

    service_ms: float = math.inf
    rps: float = 0.0


def unloaded_after(before: Unloaded, second: SecondFigures) -> Unloaded:
    """The lowest service time seen, now including ``second``."""
    if second.requests and second.service_low_ms < before.service_ms:
        return Unloaded(second.service_low_ms, second.rps)
    return before


def classify(second: SecondFigures, unloaded: Unloaded) -> Bottleneck:
    """What limited the load in ``second``; ``unloaded`` is the run's service time unloaded."""
    generator = _generator(second)
    if generator is not None:
        return generator
    healthy = f"the generator was healthy (CPU {second.cpu_percent:.0f}%, loop lag {second.loop_lag_ms:.0f} ms)"
    if not second.requests:
        # Load was asked for and the generator could send it, yet nothing came back: a
        # target that froze (or a run paused, which sends nothing: rate or users are 0 then).
        load = second.asked_rate if second.model == "open" else second.users
        if load:
            return Bottleneck(TARGET, f"no answer completed in this second while {healthy}")
        return Bottleneck()
    held_back = _held_back(second)
    base = unloaded.service_ms
    # The mean, not the median: a target that froze holds only the requests on the wire,
    # a few among many answered at once after it; their service time shows in the mean.
    service = second.service_mean_ms
    rose = math.isfinite(base) and service >= RISE_FACTOR * base and service - base >= RISE_MS
    steep = math.isfinite(base) and service >= STEEP_FACTOR * base and service - base >= STEEP_MS
    if rose and (held_back or steep or second.model != "open"):
        busy = (
            f"; all {second.connections} connections busy"
            if second.model == "open" and _busy_share(second) >= BUSY_SHARE
            else ""
        )
        return Bottleneck(
            TARGET,
            f"service time {base:.1f} ms unloaded (fastest, at {unloaded.rps:.0f} req/s) -> "
            f"mean {service:.1f} ms, p50 {second.service_p50_ms:.1f} ms at {second.rps:.0f} "
            f"req/s while {healthy}{busy}",
        )
    if second.model == "open" and held_back and _lanes_full(second):
        rate = second.asked_rate if second.asked_rate else second.rps
        needed = rate * second.service_mean_ms / 1000
        suggested = max(math.ceil(needed * HEADROOM), second.connections + 1)
        return Bottleneck(
            CONNECTIONS,
            f"all {second.connections} connections busy, service time flat "
            f"(mean {service:.1f} ms, unloaded {base:.1f} ms): rate {rate:.0f}/s x service "
            f"{second.service_mean_ms:.1f} ms = {needed:.1f} requests in flight > "
            f"{second.connections} connections (Little's law); --connections {suggested} "
            "would carry it",
        )
    return Bottleneck()


def _generator(second: SecondFigures) -> Bottleneck | None:
    cpu_bound = second.cpu_percent > CPU_SHARE * max(second.processes, 1)
    if second.loop_lag_ms <= LOOP_LAG_MS and not cpu_bound:
        return None
    if cpu_bound:
        why = "at its limit: more --processes or a lighter profile"
    elif second.cpu_percent < HOST_BUSY_CPU:
        # Late with little CPU of its own: the machine ran something else (the target, if it
        # shares the host), and the generator's timings are late all the same.
        why = "its loop was late with little CPU of its own: the host is busy"
    else:
        why = "its event loop was late: more --processes or a lighter profile"
    return Bottleneck(
        GENERATOR,
        f"the load generator itself: loop lag {second.loop_lag_ms:.0f} ms, CPU "
        f"{second.cpu_percent:.0f}% over {second.processes} process(es), {why}",
    )


def _busy_share(second: SecondFigures) -> float:
    """Little's law: requests on the wire on average, as a share of the connections."""
    if not second.connections:
        return 0.0
    return second.rps * second.service_mean_ms / 1000 / second.connections


def _waited(second: SecondFigures) -> bool:
    """Requests waited for a lane: latency from due well above service time from send."""
    wait = second.latency_p50_ms - second.service_p50_ms
    return wait >= max(RISE_MS, 0.5 * second.service_p50_ms)


def _lanes_full(second: SecondFigures) -> bool:
    return _busy_share(second) >= BUSY_SHARE or _waited(second)


def _held_back(second: SecondFigures) -> bool:
    """The open model's load did not get through as asked."""
    if second.model != "open":
        return True
    short = second.asked_rate is not None and second.rps < 0.9 * second.asked_rate
    return second.dropped > 0 or _lanes_full(second) or short


def worst(a: Bottleneck, b: Bottleneck) -> Bottleneck:
    """The one of two seconds merged into one that names the most (the later on a tie)."""
    return a if _PRIORITY[a.kind] > _PRIORITY[b.kind] else b


def summarise(kinds: Sequence[Bottleneck], service_p50_ms: Sequence[float] = ()) -> Bottleneck:
    """The run's (or a window's) bottleneck from its seconds: the kind that held longest.

    The evidence is that of its telling second (for the target, the slowest one), with how
    many seconds the kind held. ``service_p50_ms`` pairs with ``kinds`` when given.
    """
    named = [b for b in kinds if b.kind != NONE]
    if not named:
        return Bottleneck()
    seconds: dict[str, int] = {}
    for b in named:
        seconds[b.kind] = seconds.get(b.kind, 0) + 1
    kind = max(seconds, key=lambda k: (seconds[k], _PRIORITY[k]))
    if seconds[kind] < min(MIN_SECONDS, len(kinds)):
        return Bottleneck()
    indexes = [i for i, b in enumerate(kinds) if b.kind == kind]
    telling = indexes[-1]
    if kind == TARGET and len(service_p50_ms) == len(kinds):
        telling = max(indexes, key=lambda i: service_p50_ms[i])
    return Bottleneck(kind, f"{seconds[kind]} of {len(kinds)} s: {kinds[telling].evidence}")
