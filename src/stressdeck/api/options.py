"""Keyword overrides of the Python API, read and checked as the CLI reads its options.

As on the command line, ``rate=`` selects the open model and ``users=`` the closed one unless
``model=`` says which (``rate=`` with ``model="closed"`` is refused)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

from stressdeck.core import option_values
from stressdeck.core.errors import InputError
from stressdeck.core.files import refuse_unwritable
from stressdeck.engine import Plan, build_plan
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.plan import DEFAULT_MAX_DURATION
from stressdeck.profiles.presets import PRESETS
from stressdeck.profiles.profile import SUFFIXES, Profile, load_profile, parse_profile

ProfileLike = str | Path | Mapping[str, Any] | Profile
Duration = str | float  # "30s", "2m", or seconds


class RunOverrides(TypedDict, total=False):
    """The keyword overrides of ``run``, ``start`` and the pytest fixture: the CLI's options
    with underscores, read as the CLI reads them (``None`` leaves the profile's value).

    A type checker refuses a key not listed here (``user=10``) or a value of the wrong type;
    at run time a bad value is an ``InputError`` with the CLI's one line.
    """

    base_url: str | None
    users: int | None
    rate: float | None
    connections: int | None
    model: Literal["closed", "open"] | None
    duration: Duration | None
    requests: int | None
    preset: str | None
    max_duration: Duration | None
    processes: int | Literal["auto"] | None
    metrics_url: str | None
    metric: str | list[str] | tuple[str, ...] | None
    i_know: bool | None
    save: str | Path | None
    force: bool | None
    keep_secrets: bool | None
    json: str | Path | None
    serve_metrics: str | None


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in options:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(options)}, got {text!r}")
        return text

    return check


def _text(value: Any) -> str:
    if not isinstance(value, (str, Path)):
        raise argparse.ArgumentTypeError(f"expected a string, got {value!r}")
    return str(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")
    return value


def _series(value: Any) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise argparse.ArgumentTypeError(f"expected a series or a list of them, got {value!r}")
    return list(values)


# Each override and how the CLI reads its option (numbers are read as their text would be);
# the keys are RunOverrides' (a test compares).
_OPTIONS: dict[str, Callable[[Any], Any]] = {
    "base_url": _text,
    "users": option_values.positive_int,
    "rate": option_values.positive_float,
    "connections": option_values.positive_int,
    "model": _choice(("closed", "open")),
    "duration": option_values.duration,
    "requests": option_values.positive_int,
    "preset": _choice(PRESETS),
    "max_duration": option_values.duration,
    "processes": option_values.processes,
    "metrics_url": _text,
    "metric": _series,
    "i_know": _flag,
    "save": _text,
    "force": _flag,
    "keep_secrets": _flag,
    "json": _text,
    "serve_metrics": _text,
}


@dataclass(frozen=True)
class RunOptions:
    """Overrides checked and typed, as the CLI's parser would leave them."""

    values: Mapping[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def check_overrides(overrides: RunOverrides | Mapping[str, Any]) -> RunOptions:
    """Validate keyword overrides; raises InputError naming the option as the CLI would."""
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        option = "--" + key.replace("_", "-")
        reader = _OPTIONS.get(key)
        if reader is None:
            raise InputError(
                option, "", "unknown option; expected one of " + ", ".join(sorted(_OPTIONS))
            )
        if value is None:
            continue
        try:
            text = (
                value
                if isinstance(value, (bool, list, tuple, Path)) or reader is _text
                else str(value)
            )
            values[key] = reader(text)
        except argparse.ArgumentTypeError as exc:
            raise InputError(option, "", str(exc)) from None
    return RunOptions(values)


def load(profile: ProfileLike) -> Profile:
    """A profile from a path, a dict in the profile schema, or a Profile; raises InputError."""
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, Mapping):
        return parse_profile(dict(profile), "<profile>")
    return load_profile(profile)


def plan_for(profile: ProfileLike, options: RunOptions) -> Plan:
    metrics = options.get("metric")
    overrides = Overrides(
        base_url=options.get("base_url"),
        users=options.get("users"),
        rate=options.get("rate"),
        connections=options.get("connections"),
        model=options.get("model"),
        duration=options.get("duration"),
        requests=options.get("requests"),
        preset=options.get("preset"),
        metrics_url=options.get("metrics_url"),
        metrics=tuple(metrics) if metrics else None,
    )
    return build_plan(
        load(profile),
        overrides,
        max_duration=options.get("max_duration", DEFAULT_MAX_DURATION),
        i_know=bool(options.get("i_know", False)),
    )


def check_outputs(options: RunOptions) -> None:
    save = options.get("save")
    if save is not None:
        if Path(save).suffix.lower() not in SUFFIXES:
            raise InputError("--save", "", f"expected a .toml or .json file name, got {save}")
        if Path(save).exists() and not options.get("force"):
            raise InputError("--save", "", f"{save} already exists (use --force to overwrite)")
    refuse_unwritable("--save", save)
    refuse_unwritable("--json", options.get("json"))
