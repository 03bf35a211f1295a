"""The console's small pure functions, table-driven: axis ticks, the rate ladder, the
"target not answering" verdict and the bounded count of error messages."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_ui_support import sample_snapshot

from stressdeck.engine.snapshot import PAUSED, RUNNING
from stressdeck.engine.stats import MAX_MESSAGES, OTHER_MESSAGES, count_message
from stressdeck.ui.answering import AnsweringWatch
from stressdeck.ui.controller import ladder_step
from stressdeck.ui.widgets.charts import nice_ticks, number_label, time_label, time_ticks


@pytest.mark.parametrize(
    ("top", "most", "ticks"),
    [
        (429.8, 4, [0, 200, 400, 600]),
        (2368, 4, [0, 1000, 2000, 3000]),
        (36.0, 2, [0, 20, 40]),
        (1.0, 4, [0, 0.5, 1.0]),
        (0.0, 4, [0, 1]),
    ],
)
def test_nice_ticks_are_round(top: float, most: int, ticks: list[float]) -> None:
    assert nice_ticks(top, most) == ticks


@pytest.mark.parametrize(
    ("value", "unit", "label"),
    [(200.0, "/s", "200/s"), (0.5, "ms", "0.5ms"), (20000.0, "/s", "20k/s"), (3.0, "", "3")],
)
def test_number_labels_carry_units_and_no_needless_decimals(
    value: float, unit: str, label: str
) -> None:
    assert number_label(value, unit) == label


def test_time_axis_has_round_offsets_with_units() -> None:
    assert time_ticks(1.0, 30.0, most=3) == [10.0, 20.0, 30.0]
    assert [time_label(t) for t in (45.0, 150.0, 3900.0)] == ["45s", "2m30s", "1h05m"]


@pytest.mark.parametrize(
    ("rate", "up", "down"),
    [(200.0, 300.0, 150.0), (210.0, 300.0, 200.0), (1000.0, 1500.0, 700.0), (0.1, 0.15, 0.1)],
)
def test_the_rate_ladder(rate: float, up: float, down: float) -> None:
    assert ladder_step(rate, True) == up
    assert ladder_step(rate, False) == down


def test_200_to_1000_rps_is_four_presses() -> None:
    rate, presses = 200.0, 0
    while rate < 1000:
        rate, presses = ladder_step(rate, True), presses + 1
    assert (rate, presses) == (1000.0, 4)


def snapshot_at(elapsed: float, requests: int, connect: int, in_flight: int = 0, **kw):
    base = sample_snapshot()
    total = replace(
        base.total,
        requests=requests,
        error_counts={"connect": connect} if connect else {},
        error_messages={"connect: Connection refused": connect} if connect else {},
    )
    return replace(base, elapsed=elapsed, total=total, in_flight=in_flight, **kw)


def test_all_connect_errors_is_not_answering_and_one_success_is() -> None:
    watch = AnsweringWatch()
    assert watch.update(snapshot_at(0.25, 100, 100)) is None  # too soon to say
    said = watch.update(snapshot_at(1.5, 900, 900))
    assert said == "connect: Connection refused (every request for 1 s)"
    assert watch.update(snapshot_at(2.5, 1000, 999)) is None  # one answer came back


def test_hanging_requests_are_not_answering_and_a_pause_is_not() -> None:
    watch = AnsweringWatch()
    for t in (0.5, 1.5, 2.5, 3.5):
        said = watch.update(snapshot_at(t, 0, 0, in_flight=4, state=RUNNING))
    assert said == "no answer for 3 s (4 requests waiting)"
    assert watch.update(snapshot_at(4.0, 0, 0, in_flight=4, state=PAUSED)) is None


def test_error_messages_are_bounded() -> None:
    counts: dict[str, int] = {}
    for i in range(MAX_MESSAGES + 50):
        count_message(counts, f"connect: refused by 10.0.0.{i}")
    assert len(counts) == MAX_MESSAGES + 1
    assert counts[OTHER_MESSAGES] == 50
    assert sum(counts.values()) == MAX_MESSAGES + 50
