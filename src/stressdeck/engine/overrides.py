"""What a run changes of its profile: the command line's load options, the console's choices,
a session's record of them. One type for all, so a new option is added in one place."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stressdeck.core.fields import MAX_SECONDS, Reader, join


@dataclass(frozen=True)
class Overrides:
    """Each field overrides the profile's own value; None leaves the profile's."""

    base_url: str | None = None
    users: int | None = None
    rate: float | None = None
    connections: int | None = None  # open model: keep-alive connections, all processes
    model: str | None = None
    duration: float | None = None
    requests: int | None = None
    preset: str | None = None
    metrics_url: str | None = None
    metrics: tuple[str, ...] | None = None
    # The HTTP client and TLS settings (over the profile's ``client`` and ``[tls]``).
    client: str | None = None
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_key_password_env: str | None = None
    tls_server_name: str | None = None
    # Where connections go (over the profile's; see profiles/routes.py).
    connect_to: tuple[str, ...] | None = None
    unix_socket: str | None = None
    local_address: str | None = None
    proxy: str | None = None
    proxy_from_env: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """The overrides that are set, as plain data (a session's ``plan.overrides``)."""
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is not None:
                out[item.name] = list(value) if isinstance(value, tuple) else value
        return out

    def changed(self, **changes: Any) -> Overrides:
        """A copy with some overrides set (a value) or removed (None)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Overrides:
        """The load options of a parsed command line (those the parser does not have stay None)."""
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            # argparse keeps the repeated --metric option as ``metric``.
            value = getattr(args, "metric" if item.name == "metrics" else item.name, None)
            if item.name == "metrics":
                value = tuple(value) if value else None
            elif isinstance(value, list):  # an option given once per value (--connect-to)
                value = tuple(value)
            values[item.name] = value
        return cls(**values)

    @classmethod
    def from_dict(cls, r: Reader, table: Mapping[str, Any], where: str) -> Overrides:
        """Read back ``to_dict``'s table; an unknown key or a wrong type is one InputError."""
        readers = {item.name: _READERS[str(item.type)] for item in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key in table:
            read = readers.get(str(key))
            if read is None:
                raise r.fail(
                    join(where, str(key)), "unknown override; expected one of " + ", ".join(readers)
                )
            values[str(key)] = read(r, table, str(key), where)
        return cls(**values)


def _strings(r: Reader, table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    return tuple(r.string_list(table, key, where))


def _float(r: Reader, table: Mapping[str, Any], key: str, where: str) -> float:
    # A rate or a duration: never below 0 (a replay would run it); a duration within a year.
    most = MAX_SECONDS if key == "duration" else None
    return r.number(table, key, where, minimum=0.0, maximum=most)


_READERS: dict[str, Any] = {
    "str | None": lambda r, t, k, w: r.string(t, k, w),
    "int | None": lambda r, t, k, w: r.count(t, k, w),
    "float | None": _float,
    "tuple[str, ...] | None": _strings,
    "bool | None": lambda r, t, k, w: r.boolean(t, k, w),
}


NO_OVERRIDES = Overrides()  # the profile as it is
