"""Target metrics: scrape a Prometheus text endpoint once a second while a run goes on.

The scraper keeps a bounded history per selected series and publishes an immutable
``MetricsSnapshot`` after every scrape. Derived series follow Prometheus' own maths: a
counter becomes a per-second rate between two scrapes, a histogram a quantile of the
bucket increments between two scrapes (``histogram_quantile``'s linear interpolation),
a gauge is shown as it is. A failed scrape is a point with ``ok=False``, never an
exception in the run. No UI code here: the console renders the snapshots.

Series are chosen with a small PromQL-like spelling::

    demo_requests_total                      # a counter: requests/s, summed over labels
    demo_request_duration_seconds            # a histogram: p95 of the last interval
    p99(demo_request_duration_seconds{route="/items"})
    rate(demo_request_duration_seconds)      # a histogram's observations/s
    mean(demo_request_duration_seconds)      # sum/count of the last interval
    process_resident_memory_bytes            # a gauge, as it is
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from stressdeck.core.errors import InputError, describe
from stressdeck.core.fields import Reader, join
from stressdeck.core.hosts import check_url
from stressdeck.core.redact import redact_url

if TYPE_CHECKING:
    # Imported where a scrape is made: reading a profile's series (the console's first
    # screen, every plan) needs none of aiohttp.
    import aiohttp

HISTORY = 600  # points per series: ten minutes at one scrape a second
DEFAULT_INTERVAL = 1.0
DEFAULT_TIMEOUT = 0.9  # under the interval, so a slow endpoint never makes scrapes pile up
MAX_EXPOSITION = 8 * 1024 * 1024
FUNCTIONS = ("rate", "value", "mean")  # and pNN, e.g. p95 or p99.9
_ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"  # the classic text format, not OpenMetrics
_SPEC = re.compile(
    r"\s*(?:(?P<fn>[A-Za-z][A-Za-z0-9.]*)\s*\(\s*)?(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)\s*"
    r"(?:\{(?P<labels>[^}]*)\})?\s*(?(fn)\))\s*"
)
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_QUANTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?)")


# ---- what the console and sessions see: immutable, plain data -------------------------------


@dataclass(frozen=True)
class SeriesSpec:
    """A selected series: ``text`` is the user's spelling and names the series in snapshots."""

    text: str
    name: str
    labels: tuple[tuple[str, str], ...] = ()
    function: str | None = None  # rate, value, mean, pNN; None: by the family's type

    @property
    def quantile(self) -> float | None:
        match = _QUANTILE.fullmatch(self.function or "")
        return round(float(match.group(1)) / 100, 10) if match else None


@dataclass(frozen=True)
class MetricPoint:
    """One scrape of one series; ``value`` is None when there was nothing to compute yet."""

    t: float  # seconds since the scraper's origin (the run's start, when given)
    value: float | None
    ok: bool = True
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # JSON has no Infinity or NaN: a +Inf gauge is written as "no value", and why.
        if self.value is not None and not math.isfinite(self.value):
            return {
                "t": round(self.t, 3),
                "value": None,
                "ok": self.ok,
                "error": self.error or f"not a finite number ({self.value})",
            }
        return {"t": round(self.t, 3), "value": self.value, "ok": self.ok, "error": self.error}


@dataclass(frozen=True)
class SeriesHistory:
    spec: str
    kind: str  # what the values are: "rate", "value", "mean" or "p95"...
    unit: str  # "/s" for rates, the family's unit otherwise ("" when unknown)
    points: tuple[MetricPoint, ...] = ()

    @property
    def last(self) -> MetricPoint | None:
        return self.points[-1] if self.points else None

    def values(self) -> list[float | None]:
        return [point.value for point in self.points]

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "kind": self.kind,
            "unit": self.unit,
            "points": [point.to_dict() for point in self.points],
        }


@dataclass(frozen=True)
class MetricsSnapshot:
    url: str
    t: float
    scrapes: int = 0
    failures: int = 0
    last_error: str | None = None
    series: tuple[SeriesHistory, ...] = ()
    # One point per scrape, selected series or not: value = seconds the scrape took.
    scrape_points: tuple[MetricPoint, ...] = ()

    def get(self, spec: str) -> SeriesHistory | None:
        return next((series for series in self.series if series.spec == spec), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "t": round(self.t, 3),
            "scrapes": self.scrapes,
            "failures": self.failures,
            "last_error": self.last_error,
            "series": [series.to_dict() for series in self.series],
            "scrape_points": [point.to_dict() for point in self.scrape_points],
        }

    @classmethod
    def from_dict(cls, r: Reader, table: Mapping[str, Any], where: str) -> MetricsSnapshot:
        """Read back what ``to_dict`` wrote; raises InputError naming the field."""
        series = []
        for index, item in enumerate(r.array(table, "series", where, required=False)):
            path = f"{where}.series[{index}]"
            entry = r.as_table(item, path)
            series.append(
                SeriesHistory(
                    spec=r.string(entry, "spec", path),
                    kind=r.string(entry, "kind", path),
                    unit=r.string(entry, "unit", path, default=""),
                    points=_read_points(r, entry, "points", path),
                )
            )
        return cls(
            url=r.string(table, "url", where),
            t=r.number(table, "t", where),
            scrapes=r.integer(table, "scrapes", where, default=0),
            failures=r.integer(table, "failures", where, default=0),
            last_error=r.optional_string(table, "last_error", where),
            series=tuple(series),
            scrape_points=_read_points(r, table, "scrape_points", where),
        )


def _read_points(
    r: Reader, table: Mapping[str, Any], key: str, where: str
) -> tuple[MetricPoint, ...]:
    points = []
    for index, item in enumerate(r.array(table, key, where, required=False)):
        path = f"{join(where, key)}[{index}]"
        point = r.as_table(item, path)
        points.append(
            MetricPoint(
                t=r.number(point, "t", path),
                value=r.optional_number(point, "value", path),
                ok=r.boolean(point, "ok", path),
                error=r.optional_string(point, "error", path),
            )
        )
    return tuple(points)


# ---- pure maths and parsing ------------------------------------------------------------------


def parse_series(text: str, source: str = "--metric") -> SeriesSpec:
    """``NAME``, ``NAME{label="v"}`` or ``FN(NAME{...})`` with FN rate, value, mean or pNN."""
    match = _SPEC.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InputError(
            source,
            "",
            f'expected a series like demo_requests_total or p95(name{{label="v"}}), '
            f"got {describe(text)}",
        )
    function = match.group("fn")
    if function is not None:
        function = function.lower()
        quantile = _QUANTILE.fullmatch(function)
        if function not in FUNCTIONS and not (quantile and 0 < float(quantile.group(1)) < 100):
            raise InputError(
                source,
                "",
                f"expected rate, value, mean or a quantile like p95, got {describe(function)}",
            )
    labels: list[tuple[str, str]] = []
    raw = (match.group("labels") or "").strip()
    position = 0
    while position < len(raw):
        label = _LABEL.match(raw, position)
        if label is None or label.end() == position:
            raise InputError(
                source, "", f'expected labels like {{route="/items"}}, got {describe(raw)}'
            )
        labels.append((label.group(1), re.sub(r"\\(.)", r"\1", label.group(2))))
        position = label.end()
    return SeriesSpec(
        text=text.strip(), name=match.group("name"), labels=tuple(labels), function=function
    )


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' ``histogram_quantile`` over (upper bound, cumulative count) pairs.

    Linear interpolation inside the bucket holding the rank; the first bucket starts at 0
    (or is its bound when that is <= 0); a rank in the +Inf bucket gives the highest finite
    bound. None when there are no observations, or when the target's buckets say nothing
    usable (a NaN or infinite count). Hostile values never raise: a bucket with a NaN bound
    is left out, and counts that fall with the bound are raised to the one below, as
    Prometheus does, so the cumulative counts always climb.
    """
    if not 0 <= q <= 1:
        return None
    ordered = sorted((bound, count) for bound, count in buckets if not math.isnan(bound))
    if not ordered or not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
        return None
    if any(not math.isfinite(count) for _, count in ordered):
        return None
    climbing: list[tuple[float, float]] = []
    highest = 0.0
    for bound, count in ordered:
        highest = max(highest, count)
        climbing.append((bound, highest))
    ordered = climbing
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    # The last count is the highest, so some bucket holds the rank.
    index = next(i for i, (_, count) in enumerate(ordered) if count >= rank)
    upper, count = ordered[index]
    if math.isinf(upper):
        below = ordered[-2][0] if len(ordered) > 1 else None
        return below if below is not None and math.isfinite(below) else None
    if index == 0:
        if upper <= 0:
            return upper if math.isfinite(upper) else None
        lower, below_count = 0.0, 0.0
    else:
        lower, below_count = ordered[index - 1]
        if math.isinf(lower):  # a -Inf bucket below: nothing to interpolate from
            return upper
    if count == below_count:
        return upper
    # A convex combination of the two bounds: no overflow however large they are; clamped,
    # since rounding can put it an ulp outside them (found by the property at 2,000 examples).
    fraction = (rank - below_count) / (count - below_count)
    return min(max(lower * (1 - fraction) + upper * fraction, lower), upper)


def counter_increase(previous: float, current: float) -> float:
    """The increase between two readings; a drop means the target restarted from zero."""
    return current - previous if current >= previous else current


@dataclass
class _Family:
    name: str
    type: str
    help: str
    samples: list[tuple[str, dict[str, str], float]]


def parse_exposition(text: str) -> dict[str, _Family]:
    """Families by name; raises ValueError on text that is not the Prometheus text format."""
    from prometheus_client.parser import text_string_to_metric_families

    families = {}
    try:
        for family in text_string_to_metric_families(text):
            families[family.name] = _Family(
                family.name,
                family.type,
                family.documentation,
                [(s.name, dict(s.labels), float(s.value)) for s in family.samples],
            )
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    return families


# ---- one selected series: raw readings in, derived points out --------------------------------


class _Series:
    def __init__(self, spec: SeriesSpec, history: int) -> None:
        self.spec = spec
        self.points: deque[MetricPoint] = deque(maxlen=history)
        self.kind = spec.function or "value"
        self.unit = ""
        self._previous: tuple[float, Any] | None = None  # (t, raw reading)

    def fail(self, t: float, error: str) -> None:
        self.points.append(MetricPoint(t, None, ok=False, error=error))
        self._previous = None  # a rate across a gap would smear it; start again

    def record(self, t: float, families: Mapping[str, _Family]) -> None:
        try:
            family, samples = _find(self.spec, families)
        except LookupError as exc:
            self.fail(t, str(exc))
            return
        function = self.spec.function or {
            "counter": "rate",
            "histogram": "p95",
            "summary": "mean",
            "gaugehistogram": "p95",
        }.get(family.type, "value")
        self.kind = function
        self.unit = "/s" if function == "rate" else _unit(family.name)
        labels = self.spec.labels
        if function == "value":
            if _only_nan(samples, labels, family, ("", "_total", "_count")):
                # A NaN gauge means "no value now"; summed as nothing it would read as 0.
                self.points.append(MetricPoint(t, None, error="the target reported NaN"))
                return
            value = _sum(samples, labels, family, ("", "_total", "_count"))
            self.points.append(MetricPoint(t, value))
            return
        if function.startswith("p") and family.type == "summary":
            quantile = self.spec.quantile or 0.95
            values = [
                v
                for n, sample_labels, v in samples
                if n == family.name
                and _matches(sample_labels, labels)
                and _float(sample_labels.get("quantile")) == quantile
            ]
            if not values:
                self.fail(t, f"{family.name} has no quantile {quantile:g}")
                return
            self.points.append(MetricPoint(t, max(values)))
            return
        if function.startswith("p") and family.type not in ("histogram", "gaugehistogram"):
            self.fail(t, f"{function} needs a histogram, {family.name} is a {family.type}")
            return
        if function.startswith("p"):
            reading: Any = _buckets(samples, labels, family.name)
        elif function == "mean":
            reading = (
                _sum(samples, labels, family, ("_sum",)),
                _sum(samples, labels, family, ("_count",)),
            )
        else:
            reading = _sum(samples, labels, family, ("", "_total", "_count"))
        previous, self._previous = self._previous, (t, reading)
        if previous is None:
            return  # a derived value needs two readings
        elapsed = t - previous[0]
        if function == "rate":
            self.points.append(
                MetricPoint(
                    t, counter_increase(previous[1], reading) / elapsed if elapsed > 0 else None
                )
            )
        elif function == "mean":
            count = counter_increase(previous[1][1], reading[1])
            total = counter_increase(previous[1][0], reading[0])
            self.points.append(MetricPoint(t, total / count if count > 0 else None))
        else:
            old = previous[1]
            reset = any(reading.get(le, 0.0) < count for le, count in old.items())
            deltas = [
                (le, count - (0.0 if reset else old.get(le, 0.0))) for le, count in reading.items()
            ]
            if any(not math.isfinite(count) for _, count in deltas):
                # What a NaN bucket means is unknown: say so rather than draw a quantile.
                error = "the target's buckets hold NaN or infinite counts"
                self.points.append(MetricPoint(t, None, error=error))
                return
            self.points.append(
                MetricPoint(t, histogram_quantile(self.spec.quantile or 0.95, deltas))
            )

    def history(self) -> SeriesHistory:
        return SeriesHistory(self.spec.text, self.kind, self.unit, tuple(self.points))


def _find(
    spec: SeriesSpec, families: Mapping[str, _Family]
) -> tuple[_Family, list[tuple[str, dict[str, str], float]]]:
    name = spec.name
    for candidate in (name, name.removesuffix("_total")):
        family = families.get(candidate)
        if family is not None:
            return family, family.samples
    for family in families.values():  # a sample of a family: x_count, x_sum, x_bucket ...
        samples = [s for s in family.samples if s[0] == name]
        if samples:
            kind = "counter" if name.endswith(("_count", "_sum", "_total")) else "gauge"
            return _Family(name, kind, family.help, samples), samples
    raise LookupError(f"{name} is not exposed by the target")


def _matches(labels: Mapping[str, str], wanted: Iterable[tuple[str, str]]) -> bool:
    return all(labels.get(key) == value for key, value in wanted)


def _sum(
    samples: list[tuple[str, dict[str, str], float]],
    wanted: Sequence[tuple[str, str]],
    family: _Family,
    suffixes: Sequence[str],
) -> float:
    names = {family.name + suffix for suffix in suffixes}
    return sum(
        v
        for n, labels, v in samples
        if n in names and _matches(labels, wanted) and not math.isnan(v)
    )


def _only_nan(
    samples: list[tuple[str, dict[str, str], float]],
    wanted: Sequence[tuple[str, str]],
    family: _Family,
    suffixes: Sequence[str],
) -> bool:
    """Some samples match, and every one of them is NaN."""
    names = {family.name + suffix for suffix in suffixes}
    matching = [v for n, labels, v in samples if n in names and _matches(labels, wanted)]
    return bool(matching) and all(math.isnan(v) for v in matching)


def _buckets(
    samples: list[tuple[str, dict[str, str], float]], wanted: Sequence[tuple[str, str]], name: str
) -> dict[float, float]:
    """Cumulative counts by upper bound, summed over the matching label sets."""
    buckets: dict[float, float] = {}
    for sample_name, labels, value in samples:
        bound = _float(labels.get("le"))
        if sample_name == name + "_bucket" and bound is not None and _matches(labels, wanted):
            buckets[bound] = buckets.get(bound, 0.0) + value
    return buckets


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _unit(name: str) -> str:
    for suffix, unit in (("_seconds", "s"), ("_bytes", "B"), ("_ratio", ""), ("_celsius", "°C")):
        if name.endswith(suffix):
            return unit
    return ""


# ---- the scraper -----------------------------------------------------------------------------


@dataclass
class _Status:
    scrapes: int = 0
    failures: int = 0
    last_error: str | None = None
    points: deque[MetricPoint] = field(default_factory=lambda: deque(maxlen=HISTORY))


class MetricsScraper:
    """Scrape ``url`` every ``interval`` seconds while running; read ``snapshot()`` at any time.

    Start and stop it with the run (``await start()`` / ``await stop()``), or let it run in
    a task with ``await run(stop_event)``. ``on_snapshot`` is called on the scraper's loop
    after every scrape with the new snapshot (the console posts it as a message).
    """

    def __init__(
        self,
        url: str,
        *,
        series: Iterable[str | SeriesSpec] = (),
        interval: float = DEFAULT_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        history: int = HISTORY,
        origin: float | None = None,
        headers: Mapping[str, str] | None = None,
        insecure: bool = False,
        on_snapshot: Callable[[MetricsSnapshot], None] | None = None,
    ) -> None:
        check_url("metrics_url", "", url)
        if not interval > 0 or not timeout > 0 or history < 1:
            raise ValueError("interval and timeout must be positive and history at least 1")
        self.url = url
        # What snapshots, errors and saved files show: a password in the URL is not theirs to keep.
        self._shown_url = redact_url(url)
        self.interval = interval
        self.timeout = timeout
        self._history = history
        self._origin = time.monotonic() if origin is None else origin
        self._headers = {"Accept": _ACCEPT, **dict(headers or {})}
        self._insecure = insecure
        self._on_snapshot = on_snapshot
        self._series: tuple[_Series, ...] = ()
        self._status = _Status(points=deque(maxlen=history))
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._snapshot = MetricsSnapshot(url=self._shown_url, t=0.0)
        for spec in series:
            self._follow(spec)

    # -- selection

    def _follow(self, spec: str | SeriesSpec) -> None:
        """Follow one more series (once, however often it is named); InputError on a bad spelling."""
        parsed = spec if isinstance(spec, SeriesSpec) else parse_series(spec)
        if not any(series.spec.text == parsed.text for series in self._series):
            self._series = (*self._series, _Series(parsed, self._history))

    def snapshot(self) -> MetricsSnapshot:
        return self._snapshot

    # -- lifecycle

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the scraper is already running")
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.run(self._stop), name="stressdeck-metrics")

    async def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            # A scrape in flight is abandoned, not awaited: stopping a run must not wait
            # up to a scrape timeout for the target's metrics.
            task, self._task = self._task, None
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # a scraper that died must not stop the run from ending
                pass
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def run(self, stop_event: asyncio.Event) -> None:
        """Scrape on a fixed cadence until ``stop_event`` is set; missed ticks are skipped."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while not stop_event.is_set():
                await self.scrape_once()
                next_at += self.interval
                now = loop.time()
                if next_at <= now:  # the scrape overran: skip, never catch up in a burst
                    next_at = now + self.interval - (now - next_at) % self.interval
                try:
                    await asyncio.wait_for(stop_event.wait(), next_at - now)
                except TimeoutError:
                    pass
        finally:
            await self.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- one scrape

    async def scrape_once(self) -> MetricsSnapshot:
        """Fetch, parse and record one scrape; a failure is recorded, never raised."""
        import aiohttp

        started = time.monotonic()
        try:
            text = await self._fetch()
            families = await asyncio.to_thread(parse_exposition, text)
        except asyncio.CancelledError:
            raise
        except ValueError as exc:
            self._record_failure(f"bad exposition text ({_one_line(str(exc))})")
        except TimeoutError:
            self._record_failure(f"timed out after {self.timeout:g}s")
        except _HTTPStatus as exc:
            self._record_failure(str(exc))
        except (aiohttp.ClientError, OSError) as exc:
            self._record_failure(_one_line(f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # anything else the target provokes is a marker too
            self._record_failure(_one_line(f"scrape failed: {type(exc).__name__}: {exc}"))
        else:
            self._record(families, time.monotonic() - started)
        return self._snapshot

    async def _fetch(self) -> str:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=1, ssl=not self._insecure),
            )
        async with self._session.get(self.url, headers=self._headers) as response:
            if response.status != 200:
                raise _HTTPStatus(f"HTTP {response.status} from {self._shown_url}")
            data = await response.content.read(MAX_EXPOSITION + 1)
        if len(data) > MAX_EXPOSITION:
            raise ValueError(f"larger than {MAX_EXPOSITION // (1024 * 1024)} MB")
        return data.decode("utf-8", errors="replace")

    def _now(self) -> float:
        return time.monotonic() - self._origin

    def _record(self, families: dict[str, _Family], took: float) -> None:
        t = self._now()
        self._status.scrapes += 1
        self._status.points.append(MetricPoint(t, took))
        for series in self._series:
            try:
                series.record(t, families)
            except Exception as exc:  # a value we cannot compute is a marker, never a stop
                series.fail(t, _one_line(f"could not compute: {type(exc).__name__}: {exc}"))
        self._publish(t)

    def _record_failure(self, error: str) -> None:
        t = self._now()
        self._status.scrapes += 1
        self._status.failures += 1
        self._status.last_error = error
        self._status.points.append(MetricPoint(t, None, ok=False, error=error))
        for series in self._series:
            series.fail(t, error)
        self._publish(t)

    def _publish(self, t: float) -> None:
        status = self._status
        self._snapshot = MetricsSnapshot(
            self._shown_url,
            t,
            status.scrapes,
            status.failures,
            status.last_error,
            tuple(series.history() for series in self._series),
            tuple(status.points),
        )
        if self._on_snapshot is not None:
            self._on_snapshot(self._snapshot)


class _HTTPStatus(Exception):
    pass


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
