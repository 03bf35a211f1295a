"""find-limit on the Charts tab: each step as it is measured, against the load asked.

Achieved requests/s (left axis) and p95 (right axis) by the load asked, a marker per step
(● held, ✗ broke an SLO), and the limit (the knee) as a line once the search found it. Above
it, a legend line and the search's status: the step being measured, or the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from stressdeck.engine.limit import LimitResult, Step
from stressdeck.ui.format import safe
from stressdeck.ui.search import ConsoleSearch, answer_text, load_text
from stressdeck.ui.widgets.charts import (
    BLUE,
    GREEN,
    ORANGE,
    PURPLE,
    RED,
    Chart,
    nice_ticks,
    number_label,
    rgb,
)

HELD, BROKE = "●", "✗"


@dataclass(frozen=True)
class SearchPicture:
    """What the chart draws: the verdict standing at each load (a step measured again
    replaces its first try), in the order of the load, and the limit once known."""

    unit: str
    steps: tuple[Step, ...]
    limit: float | None
    at_least: bool


def picture(search: ConsoleSearch) -> SearchPicture:
    standing: dict[float, Step] = {}
    for step in search.steps:
        standing[step.asked] = step  # a recheck comes after its first try: it stands
    result: LimitResult | None = search.result
    return SearchPicture(
        unit=search.unit,
        steps=tuple(standing[level] for level in sorted(standing)),
        limit=result.limit if result is not None else None,
        at_least=result.at_least if result is not None else False,
    )


class LimitLegend(Static):
    """The chart's title and legend, on one line."""

    def on_mount(self) -> None:
        text = Text("find-limit by load asked ", style="bold")
        for mark, label, color in (
            ("━", "achieved req/s", BLUE),
            ("━", "p95 (right)", ORANGE),
            (HELD, "held", GREEN),
            (BROKE, "broke", RED),
            ("┃", "limit", PURPLE),
        ):
            text.append(f" {mark}", rgb(color))
            text.append(f" {label}")
        self.update(text)


class LimitStatus(Static):
    """What the search is doing, or its answer."""

    def show(self, search: ConsoleSearch) -> None:
        if search.result is not None:
            self.update(safe(answer_text(search.result), "bold"))
            return
        held = sum(1 for step in search.steps if step.held)
        tally = f"{held} held, {len(search.steps) - held} broke"
        if search.ended is not None:
            self.update(safe(f"ended without a limit ({tally}): {search.ended}", "yellow"))
        elif search.level is None:
            self.update(Text("starting the run", style="dim"))
        else:
            level = load_text(search.level, search.unit)
            self.update(Text(f"step {search.began}: {level} asked, measuring ({tally})"))


class LimitChart(Chart):
    """Achieved req/s and p95 against the load asked, one marker per step."""

    empty_hint = "find-limit: waiting for the first step to be measured"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.shown: SearchPicture | None = None

    def show(self, drawn: SearchPicture) -> None:
        key = (drawn, self.size)
        if key == self._key:
            return
        self._key = key
        self.shown = drawn
        self._drawn_with = (drawn,)
        self._draw(drawn)
        self.refresh()

    def _draw(self, drawn: SearchPicture) -> None:  # type: ignore[override]
        plt = self.plt
        plt.clear_figure()
        steps = drawn.steps
        self.empty = not steps
        if not steps:
            return
        asked = [s.asked for s in steps]
        achieved = [s.achieved for s in steps]
        p95 = [s.latency.p95 for s in steps if s.latency.measured] or [0.0]
        rows = max(self.size.height - 2, 2)
        most_y = max(min(rows // 2, 4), 2)
        plt.plot(asked, achieved, color=BLUE)
        # A step nothing answered has no p95 (not one of 0 ms): no point on that line.
        answered = [s for s in steps if s.latency.measured]
        if answered:
            plt.plot(
                [s.asked for s in answered],
                [s.latency.p95 for s in answered],
                color=ORANGE,
                yside="right",
            )
        for held, mark, color in ((True, HELD, GREEN), (False, BROKE, RED)):
            xs = [s.asked for s in steps if s.held == held]
            ys = [s.achieved for s in steps if s.held == held]
            if xs:
                plt.scatter(xs, ys, marker=mark, color=color)
        if drawn.limit is not None:
            plt.vline(drawn.limit, PURPLE)
        # A little room right of the highest step, so its marker is not on the frame.
        right_edge = max(max(asked), drawn.limit or 0.0) * 1.05
        ticks = nice_ticks(right_edge, most=max(self.size.width // 14, 2))
        xticks = [v for v in ticks if v <= right_edge]
        suffix = "/s" if drawn.unit != "users" else ""
        plt.xticks(xticks, [number_label(v, suffix) for v in xticks])
        plt.xlim(0, right_edge)
        left = nice_ticks(max(max(achieved), 1.0), most=most_y)
        plt.yticks(left, [number_label(v, "/s") for v in left])
        plt.ylim(0, left[-1])
        right = nice_ticks(max(max(p95), 1.0), most=most_y)
        plt.yticks(right, [number_label(v, "ms") for v in right], yside=2)
        plt.ylim(0, right[-1], yside=2)
