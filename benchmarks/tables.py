"""The markdown bench.py prints: the generators, the further measurements, the goals.

Ratios are always to rows measured in the same run. "req/CPU-s ÷ raw" is the raw loop's CPU
per request over the row's, so above 1 means leaner than the raw loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RAW = "raw aiohttp loop"
TUNED = "raw aiohttp loop, tuned session"
RAW_FAST = "raw httptools loop (uvloop)"
ONE = "stressdeck fast client, 1 process (thread)"
ONE_AIOHTTP = "stressdeck aiohttp client, 1 process (thread)"
ONE_PROC = "stressdeck fast client, 1 worker process"
CLI = "stressdeck run (CLI), 1 process"
LOCUST = "locust FastHttpUser"
CONSOLE = "stressdeck fast client, console open (1 worker process)"
# The issue #19 goals for the fast client, one process.
GOAL_REQ_PER_CPU_S = 40_000
STOP = "stop() to workers gone"
RSS = "RSS over a long run"


def many(processes: int) -> str:
    return f"stressdeck fast client, {processes} processes"


@dataclass
class Row:
    name: str
    status: str = "ok"
    processes: int = 1
    pinned: str = ""
    rps: float | None = None
    requests: int | None = None
    srv_requests: int | None = None
    cpu_s: float | None = None
    peak_rss_mib: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    target_cpu_pct: float | None = None
    gen_cpu_pct: float | None = None
    other_cpu_pct: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def counted(self) -> int | None:
        """The target's count covers the tool's whole life; the tool's own count otherwise."""
        return self.srv_requests if self.srv_requests else self.requests

    @property
    def cpu_s_per_1k(self) -> float | None:
        """Whole process tree, start-up and shutdown included."""
        return self.cpu_s / self.counted * 1000 if self.counted and self.cpu_s else None

    @property
    def window_cpu_s_per_1k(self) -> float | None:
        """Only while the load ran (probes report it; the peers and the CLI cannot)."""
        value = self.extra.get("window_cpu_s_per_1k")
        return float(value) if value else None

    @property
    def req_per_cpu_s(self) -> float | None:
        """Requests per CPU-second: while the load ran when the probe says, else whole process."""
        per_1k = self.window_cpu_s_per_1k or self.cpu_s_per_1k
        return 1000 / per_1k if per_1k else None

    @property
    def window_rps(self) -> float | None:
        value = self.extra.get("window_rps")
        return float(value) if value else None


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) or digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def generators_table(rows: dict[str, Row]) -> str:
    raw = rows.get(RAW)
    raw_rps = raw.rps if raw and raw.ok else None
    raw_cpu = raw.cpu_s_per_1k if raw and raw.ok else None
    raw_window = raw.window_cpu_s_per_1k if raw and raw.ok else None
    head = (
        "| generator | procs | RPS | req/CPU-s | CPU-s / 1k req | load-window CPU-s / 1k | peak RSS MiB | p50 ms | p99 ms | "
        "target CPU % | other CPU % | RPS ÷ raw | req/CPU-s ÷ raw | load-window req/CPU-s ÷ raw | RPS of each trial |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows.values():
        if row.name in (STOP, RSS):
            continue
        if not row.ok and row.rps is None:
            lines.append(f"| {row.name} | | {row.status} |" + " |" * 12)
            continue
        name = row.name if row.ok else f"{row.name} ({row.status})"
        trials = ", ".join(f"{t:,}" for t in row.extra.get("trials_rps", []))
        lines.append(
            f"| {name} | {row.processes} | {fmt(row.rps)} | {fmt(row.req_per_cpu_s)} | {fmt(row.cpu_s_per_1k, 3)} | "
            f"{fmt(row.window_cpu_s_per_1k, 3)} | {fmt(row.peak_rss_mib, 1)} | {fmt(row.p50_ms, 2)} | "
            f"{fmt(row.p99_ms, 2)} | {fmt(row.target_cpu_pct)} | {fmt(row.other_cpu_pct)} | "
            f"{fmt(ratio(row.rps, raw_rps), 2)} | {fmt(ratio(raw_cpu, row.cpu_s_per_1k), 2)} | "
            f"{fmt(ratio(raw_window, row.window_cpu_s_per_1k), 2)} | {trials} |"
        )
    return "\n".join(lines)


def _console_lines(rows: dict[str, Row], facts: dict[str, Any]) -> list[str]:
    console, headless = rows.get(CONSOLE), rows.get(ONE_PROC)
    if console is None:
        return []
    if not console.ok:
        return [f"| console open vs headless | n/a | {console.status} |"]
    if headless is None or not headless.ok or not headless.rps:
        return ["| console open vs headless | n/a | the headless 1-worker-process row is missing |"]
    facts["console_ratio"] = ratio(console.rps, headless.rps)
    facts["console_window_ratio"] = ratio(console.window_rps, headless.window_rps)
    facts["console_cpu_ratio"] = ratio(console.window_cpu_s_per_1k, headless.window_cpu_s_per_1k)
    return [
        f"| console open vs headless, RPS | {fmt(facts['console_ratio'], 2)}× | console {fmt(console.rps)} req/s vs "
        f"headless {fmt(headless.rps)} req/s (both 1 worker process on the same core); load window "
        f"{fmt(console.window_rps)} vs {fmt(headless.window_rps)} req/s = {fmt(facts['console_window_ratio'], 2)}× |",
        f"| console open vs headless, CPU per request | {fmt(facts['console_cpu_ratio'], 2)}× | load-window CPU-s / 1k "
        f"{fmt(console.window_cpu_s_per_1k, 3)} vs {fmt(headless.window_cpu_s_per_1k, 3)}; "
        f"{console.extra.get('renders', '?')} frames rendered |",
    ]


def _rss_lines(rows: dict[str, Row], facts: dict[str, Any]) -> list[str]:
    rss = rows.get(RSS)
    if rss is None:
        return []
    if not rss.ok:
        return [f"| RSS over a long run | n/a | {rss.status} |"]
    marks = rss.extra.get("marks") or []
    if not marks:
        return [
            f"| RSS over a long run | n/a | the run never reached its first mark ({fmt(rss.requests)} requests) |"
        ]
    where = (
        "1 process, worker on a thread"
        if rss.processes == 1
        else f"{rss.processes} worker processes + parent"
    )
    lines = [
        f"| RSS after {m['mark']:,} requests | {m['tree_mib']:.1f} MiB | generator tree ({where}); "
        f"parent {m['parent_mib']:.1f} MiB; at {m['elapsed']:.0f} s |"
        for m in marks
    ]
    first = marks[0]
    end = rss.extra.get("last") or marks[-1]  # the last tick with every worker up
    if end["requests"] > marks[-1]["requests"]:
        lines.append(
            f"| RSS at the last tick, {end['requests']:,} requests | {end['tree_mib']:.1f} MiB | "
            f"parent {end['parent_mib']:.1f} MiB; at {end['elapsed']:.0f} s |"
        )
    growth = end["tree_mib"] - first["tree_mib"]
    span = end["requests"] - first["requests"]
    facts.update(rss_growth=growth, rss_last_requests=end["requests"], rss_span=span)
    lines.append(
        f"| RSS growth after {first['mark']:,} requests | {growth:+.1f} MiB | over the next {span:,} requests; "
        f"peak {fmt(rss.extra.get('peak_tree_mib'), 1)} MiB; run ended by: {rss.extra.get('stop_reason')}, "
        f"{fmt(rss.rps)} req/s |"
    )
    return lines


def _stop_lines(rows: dict[str, Row], facts: dict[str, Any]) -> list[str]:
    stop = rows.get(STOP)
    if stop is None:
        return []
    if not stop.ok:
        return [f"| stop() to workers gone | n/a | {stop.status} |"]
    facts.update(
        stop_returned=stop.extra.get("stop_returned_s"),
        workers_gone=stop.extra.get("workers_gone_s"),
    )
    return [
        f"| stop() returned | {fmt(facts['stop_returned'], 3)} s | {stop.extra.get('workers')} worker processes, "
        f"{fmt(stop.rps)} req/s before stop |",
        f"| stop() to all workers gone | {fmt(facts['workers_gone'], 3)} s | psutil: no worker pid left "
        "(zombies count as gone) |",
    ]


def further_table(rows: dict[str, Row], cores: int) -> tuple[str, dict[str, Any]]:
    """Console vs headless, RSS over a long run, stop time; and the numbers the goals need."""
    facts: dict[str, Any] = {"cores": cores}
    lines = [
        "| measurement | value | detail |",
        "|---|---:|---|",
        *_console_lines(rows, facts),
        *_rss_lines(rows, facts),
        *_stop_lines(rows, facts),
    ]
    return "\n".join(lines), facts


def goals_table(rows: dict[str, Row], facts: dict[str, Any], processes: int) -> str:
    raw, one, lot, locust = (
        rows.get(RAW),
        rows.get(ONE),
        rows.get(many(processes)),
        rows.get(LOCUST),
    )
    out = ["| goal | measured | met |", "|---|---|---|"]

    def add(goal: str, value: float | None, text: str, ok: bool | None, why: str = "") -> None:
        verdict = why or ("n/a" if ok is None or value is None else ("yes" if ok else "**no**"))
        out.append(f"| {goal} | {text if value is not None else 'not measured'} | {verdict} |")

    def good(*rs: Row | None) -> bool:
        return all(r is not None and r.ok for r in rs)

    goal = f"fast client, 1 process: ≥ {GOAL_REQ_PER_CPU_S:,} req/CPU-s through the whole engine"
    if good(one):
        assert one is not None
        fast_raw = rows.get(RAW_FAST)
        floor = ratio(one.req_per_cpu_s, fast_raw.req_per_cpu_s) if good(fast_raw) else None
        add(
            goal,
            one.req_per_cpu_s,
            f"{fmt(one.req_per_cpu_s)} req/CPU-s while the load ran (runner and worker, one "
            f"process); {fmt(floor, 2)}× the raw httptools loop's",
            (one.req_per_cpu_s or 0) >= GOAL_REQ_PER_CPU_S,
        )
    else:
        add(goal, None, "", None)
    if good(one, raw):
        assert one is not None and raw is not None
        window = ratio(raw.window_cpu_s_per_1k, one.window_cpu_s_per_1k)
        whole = ratio(raw.cpu_s_per_1k, one.cpu_s_per_1k)
        add(
            "req/CPU-s ≥ 4× the raw aiohttp loop",
            window,
            f"{fmt(window, 2)}× while the load ran; {fmt(whole, 2)}× counting start-up (1 process)",
            window is not None and window >= 4,
        )
    else:
        add("req/CPU-s ≥ 4× the raw aiohttp loop", None, "", None)
    if good(one, locust):
        assert one is not None and locust is not None
        r = ratio(locust.cpu_s_per_1k, one.cpu_s_per_1k)
        add(
            "req/CPU-s ≥ 5× locust FastHttpUser",
            r,
            f"{fmt(r, 2)}× (whole processes, start-up included)",
            r is not None and r >= 5,
        )
    else:
        add("req/CPU-s ≥ 5× locust FastHttpUser", None, "", None)
    wrk = rows.get("wrk")
    if good(one, wrk):
        assert one is not None and wrk is not None
        # Whole processes on both sides: wrk reports no load window.
        r = ratio(wrk.cpu_s_per_1k, one.cpu_s_per_1k)
        add(
            "moonshot: ≥ ¼ of wrk's req/CPU-s",
            r,
            f"{fmt(r, 2)} of wrk's (whole processes, start-up included)",
            r is not None and r >= 0.25,
        )
    else:
        add("moonshot: ≥ ¼ of wrk's req/CPU-s", None, "", None)
    goal = f"{processes} processes ≥ 1.6× one (target not the bottleneck)"
    if good(one, lot):
        assert one is not None and lot is not None
        r = ratio(lot.rps, one.rps)
        cores = facts["cores"]
        busy = (lot.gen_cpu_pct or 0) + (lot.target_cpu_pct or 0) + (lot.other_cpu_pct or 0)
        saturated = (lot.target_cpu_pct or 0) >= 90 or busy >= 90 * cores
        efficiency = ratio(one.window_cpu_s_per_1k, lot.window_cpu_s_per_1k)
        text = (
            f"{fmt(r, 2)}× ({fmt(lot.rps)} vs {fmt(one.rps)} req/s; generator {fmt(lot.gen_cpu_pct)} % + "
            f"target {fmt(lot.target_cpu_pct)} % + other {fmt(lot.other_cpu_pct)} % of {cores * 100} %); CPU per request {fmt(efficiency, 2)}× as "
            f"lean as one process's, so ≈ {fmt(processes * efficiency if efficiency else None, 2)}× on "
            f"{processes} free cores"
        )
        if saturated and r is not None and r < 1.6:
            add(
                goal,
                r,
                text,
                None,
                f"n/a: the machine is saturated (the target and other work share its {cores} cores)",
            )
        else:
            add(goal, r, text, r is not None and r >= 1.6)
    else:
        add(goal, None, "", None)
    r = facts.get("console_ratio")
    add(
        "console costs ≤ 10 % throughput",
        r,
        f"{fmt((1 - r) * 100 if r else None, 1)} % fewer req/s "
        f"(load window: {fmt((1 - facts['console_window_ratio']) * 100 if facts.get('console_window_ratio') else None, 1)} %)",
        r is not None and r >= 0.9,
    )
    growth, reached = facts.get("rss_growth"), facts.get("rss_last_requests")
    goal = "RSS grows ≤ 10 MB from 100k to 1M requests"
    if growth is None:
        add(goal, None, "", None)
    elif reached < 990_000:
        add(
            goal,
            growth,
            f"{growth:+.1f} MiB from 100k to {reached:,} (time cap hit first)",
            None,
            "n/a: 1M not reached" if growth * 1.048576 <= 10 else "**no** (already past 10 MB)",
        )
    else:
        add(goal, growth, f"{growth:+.1f} MiB", growth * 1.048576 <= 10)
    s, gone = facts.get("stop_returned"), facts.get("workers_gone")
    worst = max(s, gone) if s is not None and gone is not None else None
    add(
        "stop < 1 s (to every worker process gone)",
        worst,
        f"{fmt(s, 3)} s returned, {fmt(gone, 3)} s workers gone",
        worst is not None and worst < 1,
    )
    return "\n".join(out)
