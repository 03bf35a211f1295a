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
# Past this much of a core per process, answers wait in our own loop before they are read:
# the service time rises with our CPU, so a rise is not evidence against the target.
# (Found past the HTTP/2 client's own limit: 88 % a process, blamed on an idle nginx.)
BUSY_CPU_SHARE = 75.0
HOST_BUSY_CPU = 25.0  # a late loop with less CPU of its own than this: the host ran others
# On a busy host the target is blamed only for a service time rise this many times our lag.
LAG_EXPLAINS = 3.0
# Service time "rose" when it is this many times the run's unloaded figure, and by at least
# RISE_MS: a loopback target at 0.3 ms that answers in 1 ms on a busy machine has not risen.
# In the open model the load held back corroborates it; the closed model has no such sign,
# so there the rise must be larger (CLOSED_*). A target at capacity behind 64 connections
# and 8 slots answers 8 times slower; a slow-but-wide one stays within a few percent.
RISE_FACTOR = 2.0
RISE_MS = 2.0
CLOSED_RISE_FACTOR = 3.0
CLOSED_RISE_MS = 10.0
# Without any sign that the load was held back, only a steep rise names the target.
STEEP_FACTOR = 10.0
STEEP_MS = 50.0
# Connections are all busy when Little's law fills this share of them, or requests waited
# for one (latency from due well above service time from send).
BUSY_SHARE = 0.85
WAITED_MS = 5.0
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
    found = _beyond_generator(second, unloaded)
    share = second.cpu_percent / max(second.processes, 1)
    if found.kind == TARGET and second.requests and share >= BUSY_CPU_SHARE:
        return Bottleneck(
            GENERATOR,
            f"the load generator: {share:.0f}% CPU a process, so answers waited in our own "
            f"loop (service time {unloaded.service_ms:.1f} -> {second.service_mean_ms:.1f} ms "
            "rose with our CPU, not with the target): more processes, or a lighter profile",
        )
    if not _host_busy(second) or found.kind == NONE:
        return found
    lag = second.loop_lag_ms
    if found.kind == TARGET and not _beyond_lag(second, unloaded):
        # Our loop was so late that it alone explains the slower answers: they are ours.
        return Bottleneck(
            GENERATOR,
            f"the load generator: loop lag {lag:.0f} ms with only {second.cpu_percent:.0f}% "
            "CPU of its own (the host is overloaded), as large as the rise in service time: "
            "more CPU for the generator, or a quieter host",
        )
    return Bottleneck(
        found.kind,
        f"{found.evidence} (the host was busy: our loop lag {lag:.0f} ms with "
        f"{second.cpu_percent:.0f}% CPU of our own, so timings are a little late)",
    )


def _beyond_lag(second: SecondFigures, unloaded: Unloaded) -> bool:
    """The service time rose by much more than our own loop was late (a second with no
    answer at all needs a loop late by less than the second)."""
    if not second.requests:
        return second.loop_lag_ms < 1000
    return second.service_mean_ms - unloaded.service_ms > LAG_EXPLAINS * second.loop_lag_ms


def _beyond_generator(second: SecondFigures, unloaded: Unloaded) -> Bottleneck:
    """The target, the connections or none, once the generator is cleared."""
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
    factor, margin = (
        (RISE_FACTOR, RISE_MS) if second.model == "open" else (CLOSED_RISE_FACTOR, CLOSED_RISE_MS)
    )
    rose = math.isfinite(base) and service >= factor * base and service - base >= margin
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


def _host_busy(second: SecondFigures) -> bool:
    """The loop was late with little CPU of its own: the machine ran something else.

    Not the generator's own limit: a target on the same host at its capacity (burning the
    CPU) makes our loop late too, and blaming the generator then is the wrong answer. The
    evidence says so instead, beside whatever else the second shows.
    """
    return second.loop_lag_ms > LOOP_LAG_MS and second.cpu_percent < HOST_BUSY_CPU


def _generator(second: SecondFigures) -> Bottleneck | None:
    cpu_bound = second.cpu_percent > CPU_SHARE * max(second.processes, 1)
    if not cpu_bound and (second.loop_lag_ms <= LOOP_LAG_MS or _host_busy(second)):
        return None
    why = (
        "at its CPU limit" if cpu_bound else "its event loop was late with its own work"
    ) + ": more --processes or a lighter profile"
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
    return wait >= max(WAITED_MS, 0.5 * second.service_p50_ms)


def _lanes_full(second: SecondFigures) -> bool:
    return _busy_share(second) >= BUSY_SHARE or _waited(second)


def _held_back(second: SecondFigures) -> bool:
    """The open model's load did not get through as asked: requests dropped or waited for a
    lane. (Not completions short of the rate: a stall of a busy host does that too.)"""
    if second.model != "open":
        return True
    return second.dropped > 0 or _lanes_full(second)


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


def bottleneck_schema() -> dict[str, Any]:
    """``{kind, evidence}``: what limited the load, and the measured figures that say so."""
    return {
        "type": "object",
        "description": "What limited the load: the target (service time rose with load while "
        "the generator was healthy), the connections (all busy, service time flat), the "
        "generator (its own CPU or event loop), or none.",
        "properties": {"kind": {"enum": list(KINDS)}, "evidence": {"type": "string"}},
        "required": ["kind", "evidence"],
        "additionalProperties": False,
    }
