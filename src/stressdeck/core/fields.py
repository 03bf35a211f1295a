"""Typed reads from a parsed document (a session, a results file), each failure one
InputError naming the field.

A file may be truncated, hand-edited or from another tool: every value is checked for its
type before use, so a bad file reads as ``FILE: FIELD: expected ...``, not a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stressdeck.core.errors import InputError, describe
from stressdeck.core.units import is_finite

_MISSING = object()
# More than any run can count (2^53, every figure exact as a float); 10^30 requests is a
# hand-edited or hostile file, and would overflow the arrays figures are charted from.
MAX_COUNT = 2**53
# A run's length, an offset into it, a duration, a pause: a year. Past it a value is a
# hand-edited or hostile file (1e308 s overflowed a report), not anything a run can last.
MAX_SECONDS = 366 * 24 * 3600.0


def join(where: str, key: str) -> str:
    """The dotted path of ``key`` inside ``where``."""
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
            raise self.fail(join(where, key), "missing")
        return default

    def _expected(
        self, table: Mapping[str, Any], key: str, where: str, expected: str
    ) -> InputError:
        return self.fail(join(where, key), f"expected {expected}, got {describe(table[key])}")

    def as_table(self, value: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected a table, got {describe(value)}")
        return value

    def table(
        self, table: Mapping[str, Any], key: str, where: str, *, required: bool = True
    ) -> Mapping[str, Any]:
        value = self._get(table, key, where, _MISSING if required else {})
        return self.as_table(value, join(where, key))

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

    def count(
        self, table: Mapping[str, Any], key: str, where: str, *, default: Any = _MISSING
    ) -> int:
        """A number of things (requests, bytes): whole, not negative, and one a run can reach."""
        value = self._get(table, key, where, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            raise self._expected(
                table, key, where, f"a whole number from 0 to {MAX_COUNT:,} (a count)"
            )
        return value

    def count_map(self, table: Mapping[str, Any], key: str, where: str) -> dict[str, int]:
        inner = self.table(table, key, where, required=False)
        path = join(where, key)
        return {str(k): self.count(inner, k, path) for k in inner}

    def optional_integer(self, table: Mapping[str, Any], key: str, where: str) -> int | None:
        return None if table.get(key) is None else self.integer(table, key, where)

    def number(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        *,
        default: Any = _MISSING,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        """A finite number, within ``minimum`` and ``maximum`` when given."""
        value = self._get(table, key, where, default)
        # NaN and infinities are never measured values; they would poison comparisons.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not is_finite(value):
            raise self._expected(table, key, where, "a number")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            low = "" if minimum is None else f"from {minimum:,.12g} "
            high = "" if maximum is None else f"up to {maximum:,.12g}"
            raise self._expected(table, key, where, f"a number {low}{high}".strip())
        return value

    def optional_number(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float | None:
        if table.get(key) is None:
            return None
        return self.number(table, key, where, minimum=minimum, maximum=maximum)

    def seconds(
        self, table: Mapping[str, Any], key: str, where: str, *, default: Any = _MISSING
    ) -> float:
        """A time in seconds a run can hold: 0 to MAX_SECONDS."""
        return self.number(table, key, where, default=default, minimum=0.0, maximum=MAX_SECONDS)

    def optional_seconds(self, table: Mapping[str, Any], key: str, where: str) -> float | None:
        return self.optional_number(table, key, where, minimum=0.0, maximum=MAX_SECONDS)

    def bounded_list(
        self, table: Mapping[str, Any], key: str, where: str, most: int, what: str
    ) -> Sequence[Any]:
        """An optional list of at most ``most`` items (``what`` names the bound's reason)."""
        items = self.array(table, key, where, required=False)
        if len(items) > most:
            raise self.fail(
                join(where, key), f"{len(items):,} entries, more than the {most:,} {what}"
            )
        return items

    def string_list(self, table: Mapping[str, Any], key: str, where: str) -> list[str]:
        items = self.array(table, key, where)
        path = join(where, key)
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise self.fail(f"{path}[{index}]", f"expected a string, got {describe(item)}")
        return list(items)

    def string_map(
        self, table: Mapping[str, Any], key: str, where: str, *, required: bool = False
    ) -> dict[str, str]:
        inner = self.table(table, key, where, required=required)
        path = join(where, key)
        return {str(k): self.string(inner, k, path) for k in inner}

    def integer_map(self, table: Mapping[str, Any], key: str, where: str) -> dict[str, int]:
        inner = self.table(table, key, where, required=False)
        path = join(where, key)
        return {str(k): self.integer(inner, k, path) for k in inner}

    def number_map(
        self, table: Mapping[str, Any], key: str, where: str, required: Sequence[str] = ()
    ) -> dict[str, float]:
        inner = self.table(table, key, where, required=bool(required))
        path = join(where, key)
        for name in required:
            self.number(inner, name, path)
        return {str(k): self.number(inner, k, path) for k in inner}
