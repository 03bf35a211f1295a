"""Load over time: where a stage ramp stands at a moment, and splitting load across workers.

Pure functions only; the worker loop and the runner call them.
"""

from __future__ import annotations

from collections.abc import Sequence

from stressdeck.profiles.presets import Stage


def stage_target(stages: Sequence[Stage], start: float, elapsed: float) -> tuple[float, int | None]:
    """Target load at ``elapsed`` s, ramping linearly from ``start``; and the stage index (None when done)."""
    level = start
    t0 = 0.0
    for index, stage in enumerate(stages):
        if elapsed < t0 + stage.duration:
            fraction = (elapsed - t0) / stage.duration if stage.duration > 0 else 1.0
            return level + (stage.target - level) * fraction, index
        level = stage.target
        t0 += stage.duration
    return level, None


def split_whole(total: int, parts: int) -> list[int]:
    """Split ``total`` users (or a request budget) as evenly as possible over ``parts`` workers."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
