"""Load shapes: a stage (ramp to a level over a time) and the named presets built from stages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """Ramp linearly to ``target`` users (closed) or requests/s (open) over ``duration`` s."""

    duration: float
    target: float


# What each preset means, as stages relative to the base load B (users, or rate in the
# open model) over a run of D seconds. Shown by `stressdeck presets` and in docs/load-models.md.
PRESET_HELP = {
    "light": "a quarter of the base load (at least 1), steady",
    "medium": "ramp from 0 to the base load over the first 10 %, then hold",
    "heavy": "ramp from 0 to twice the base load over the first 20 %, then hold",
    "spike": "base load, a 2 s jump to 5x for 10 % of the run, then back to base",
    "soak": "the base load held steady for a long run (30 minutes unless a duration is given)",
}
PRESETS = tuple(PRESET_HELP)
SOAK_DEFAULT_SECONDS = 1800.0


def preset_stages(name: str, base: float, duration: float) -> tuple[Stage, ...]:
    """The stages of a named preset for base load ``base`` over ``duration`` seconds."""
    if name == "light":
        level = max(base / 4, 1.0)
        return (Stage(0.001, level), Stage(duration, level))
    if name == "medium":
        return (Stage(duration * 0.1, base), Stage(duration * 0.9, base))
    if name == "heavy":
        return (Stage(duration * 0.2, base * 2), Stage(duration * 0.8, base * 2))
    if name == "spike":
        burst = duration * 0.1
        return (
            Stage(0.001, base),
            Stage(duration * 0.4, base),
            Stage(2.0, base * 5),
            Stage(burst, base * 5),
            Stage(2.0, base),
            Stage(max(duration * 0.5 - 4.0, 0.001), base),
        )
    if name == "soak":
        return (Stage(0.001, base), Stage(duration, base))
    raise ValueError(f"unknown preset {name!r}")


def stages_duration(stages: Sequence[Stage]) -> float:
    return sum(stage.duration for stage in stages)
