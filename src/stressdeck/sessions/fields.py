"""Typed reads from a parsed session document, each failure one InputError naming the field.

A session file may be truncated, hand-edited or from another tool: every value is checked
for its type before use, so a bad file reads as ``FILE: FIELD: expected ...``, not a traceback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from stressdeck.core.errors import InputError, describe
from stressdeck.core.units import is_finite
from stressdeck.engine.snapshot import GeneratorHealth
from stressdeck.target.metrics import MetricPoint, MetricsSnapshot, SeriesHistory

_MISSING = object()


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


class Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> InputError:
        return InputError(self.source, path, message)

    def _get(self, table: Mapping[str, Any], key: str, where: str, default: Any) -> Any:
        if key in table:
            return table[key]
        if default is _MISSING:
            raise self.fail(_join(where, key), "missing")
        return default

    def _expected(
        self, table: Mapping[str, Any], key: str, where: str, expected: str
    ) -> InputError:
        return self.fail(_join(where, key), f"expected {expected}, got {describe(table[key])}")

    def as_table(self, value: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected a table, got {describe(value)}")
        return value

    def table(
        self, table: Mapping[str, Any], key: str, where: str, *, required: bool = True
    ) -> Mapping[str, Any]:
        value = self._get(table, key, where, _MISSING if required else {})
        return self.as_table(value, _join(where, key))

    def array(
        self, table: Mapping[str, Any], key: str, where: str, *, required: bool = True
    ) -> Sequence[Any]:
        value = self._get(table, key, where, _MISSING if required else [])
        if not isinstance(value, list):
            raise self._expected(table, key, where, "a list")
        return value

    def string(
        self, table: Mapping[str, Any], key: str, where: str, *, default: Any = _MISSING
    ) -> str:
        value = self._get(table, key, where, default)
        if not isinstance(value, str):
            raise self._expected(table, key, where, "a string")
        return value

    def optional_string(self, table: Mapping[str, Any], key: str, where: str) -> str | None:
        return None if table.get(key) is None else self.string(table, key, where)

    def choice(self, table: Mapping[str, Any], key: str, where: str, allowed: Sequence[str]) -> str:
        value = self.string(table, key, where)
        if value not in allowed:
            raise self._expected(table, key, where, "one of " + ", ".join(allowed))
        return value

    def boolean(self, table: Mapping[str, Any], key: str, where: str) -> bool:
        value = self._get(table, key, where, _MISSING)
        if not isinstance(value, bool):
            raise self._expected(table, key, where, "true or false")
        return value

    def integer(
        self, table: Mapping[str, Any], key: str, where: str, *, default: Any = _MISSING
    ) -> int:
        value = self._get(table, key, where, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._expected(table, key, where, "a whole number")
        return value

    def optional_integer(self, table: Mapping[str, Any], key: str, where: str) -> int | None:
        return None if table.get(key) is None else self.integer(table, key, where)

    def number(
        self, table: Mapping[str, Any], key: str, where: str, *, default: Any = _MISSING
    ) -> float:
        value = self._get(table, key, where, default)
        # NaN and infinities are never measured values; they would poison comparisons.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not is_finite(value):
            raise self._expected(table, key, where, "a number")
        return value

    def optional_number(self, table: Mapping[str, Any], key: str, where: str) -> float | None:
        return None if table.get(key) is None else self.number(table, key, where)

    def string_list(self, table: Mapping[str, Any], key: str, where: str) -> list[str]:
        items = self.array(table, key, where)
        path = _join(where, key)
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise self.fail(f"{path}[{index}]", f"expected a string, got {describe(item)}")
        return list(items)

    def string_map(
        self, table: Mapping[str, Any], key: str, where: str, *, required: bool = False
    ) -> dict[str, str]:
        inner = self.table(table, key, where, required=required)
        path = _join(where, key)
        return {str(k): self.string(inner, k, path) for k in inner}

    def integer_map(self, table: Mapping[str, Any], key: str, where: str) -> dict[str, int]:
        inner = self.table(table, key, where, required=False)
        path = _join(where, key)
        return {str(k): self.integer(inner, k, path) for k in inner}

    def number_map(
        self, table: Mapping[str, Any], key: str, where: str, required: Sequence[str] = ()
    ) -> dict[str, float]:
        inner = self.table(table, key, where, required=bool(required))
        path = _join(where, key)
        for name in required:
            self.number(inner, name, path)
        return {str(k): self.number(inner, k, path) for k in inner}


# -- generator health and target metrics: plain tables in, engine types out ------------------


def read_health(r: Reader, table: Mapping[str, Any], where: str) -> GeneratorHealth:
    """Every figure defaults to its zero: format 1 sessions hold only the last tick's four.
    Written with ``dataclasses.asdict``, read back field by field, so a new field needs no list."""
    figures: dict[str, Any] = {}
    for item in dataclasses.fields(GeneratorHealth):
        if item.type in (int, "int"):
            figures[item.name] = r.integer(table, item.name, where, default=item.default)
        else:
            figures[item.name] = r.number(table, item.name, where, default=item.default)
    return GeneratorHealth(**figures)


def read_target_metrics(r: Reader, table: Mapping[str, Any], where: str) -> MetricsSnapshot:
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
    return MetricsSnapshot(
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
        path = f"{_join(where, key)}[{index}]"
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
