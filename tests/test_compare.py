"""Compare: the verdict rules, table-driven, and the `compare` command's output and exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import tomli_w

sys.path.insert(0, str(Path(__file__).parent))

from session_support import BASE_FIGURES, crafted_document

from stressdeck.cli import main
from stressdeck.core.errors import InputError
from stressdeck.sessions.compare import (
    IMPROVEMENT,
    REGRESSION,
    SAME,
    Change,
    Figures,
    compare_figures,
    compare_sessions,
    judge,
    parse_tolerance,
)
from stressdeck.sessions.session import session_from_document

T = 0.10

JUDGEMENTS = [
    # metric, base, new, verdict
    ("p95", 20.0, 22.0, SAME),  # exactly +10 %: within
    ("p95", 20.0, 22.5, REGRESSION),
    ("p95", 20.0, 17.0, IMPROVEMENT),
    ("p95", 0.3, 0.9, SAME),  # +200 % but 0.6 ms: under the 1 ms floor
    ("p95", 0.3, 1.5, REGRESSION),
    ("p99", 100.0, 109.0, SAME),
    ("p50", 0.0, 5.0, REGRESSION),
    ("rps", 100.0, 91.0, SAME),
    ("rps", 100.0, 89.0, REGRESSION),
    ("rps", 100.0, 111.0, IMPROVEMENT),
    ("rps", 0.0, 0.0, SAME),
    ("error_rate", 0.0, 0.0, SAME),
    ("error_rate", 0.0, 0.0009, SAME),  # +0.09 pt: under 10 % of the 1 % floor
    ("error_rate", 0.0, 0.0011, REGRESSION),
    ("error_rate", 0.05, 0.054, SAME),  # +0.4 pt on 5 %: within 10 % of itself
    ("error_rate", 0.05, 0.056, REGRESSION),
    ("error_rate", 0.05, 0.04, IMPROVEMENT),
    ("requests", 1000, 10, SAME),  # never judged
]


@pytest.mark.parametrize(("metric", "base", "new", "verdict"), JUDGEMENTS)
def test_judge(metric: str, base: float, new: float, verdict: str) -> None:
    assert judge(metric, base, new, T) == verdict


def test_the_latency_floor_can_be_lowered() -> None:
    assert judge("p95", 0.3, 0.9, T, latency_floor_ms=0.1) == REGRESSION


@pytest.mark.parametrize(
    ("text", "value"), [("10%", 0.10), ("2.5 %", 0.025), ("0.2", 0.2), ("0", 0.0), ("150%", 1.5)]
)
def test_parse_tolerance(text: str, value: float) -> None:
    assert parse_tolerance(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["10", "-5%", "ten", "", "10%%"])
def test_parse_tolerance_refuses(text: str) -> None:
    with pytest.raises(InputError, match="--tolerance"):
        parse_tolerance(text)


def test_latency_is_not_judged_when_a_side_measured_nothing() -> None:
    base = Figures(requests=0, rps=0.0, error_rate=0.0, p50=0.0, p95=0.0, p99=0.0)
    new = Figures(requests=10, rps=1.0, error_rate=0.0, p50=50.0, p95=80.0, p99=90.0)
    verdicts = {c.metric: c.verdict for c in compare_figures(base, new, T)}
    assert verdicts == {
        "requests": SAME,
        "rps": IMPROVEMENT,
        "error_rate": SAME,
        "p50": SAME,
        "p95": SAME,
        "p99": SAME,
    }


def test_change_deltas() -> None:
    change = Change("p95", 20.0, 25.0, REGRESSION)
    assert change.delta == 5.0 and change.percent == 25.0
    assert Change("rps", 0.0, 5.0, SAME).percent is None


# -- crafted sessions ---------------------------------------------------------------------------


def _figures(**changes: float) -> dict[str, float]:
    return {**BASE_FIGURES, **changes}


def _session_file(tmp_path: Path, name: str, endpoints: dict[str, dict[str, float]]) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(crafted_document(endpoints)))
    return path


CASES = [
    # name, new figures of "home" (total follows), exit code, regressed metrics
    ("same", {}, 0, []),
    ("within tolerance", {"p95": 21.5, "rps": 95.0, "error_rate": 0.0005}, 0, []),
    ("improvement", {"p50": 5.0, "p95": 10.0, "p99": 20.0, "rps": 150.0}, 0, []),
    ("latency regression", {"p95": 30.0}, 3, ["p95"]),
    ("throughput regression", {"rps": 80.0}, 3, ["rps"]),
    ("error regression", {"error_rate": 0.02}, 3, ["error_rate"]),
    (
        "everything worse",
        {"rps": 50.0, "error_rate": 0.1, "p50": 20.0, "p95": 40.0, "p99": 80.0},
        3,
        ["rps", "error_rate", "p50", "p95", "p99"],
    ),
]


@pytest.mark.parametrize(("name", "new", "code", "regressed"), CASES, ids=[c[0] for c in CASES])
def test_compare_verdicts_and_exit_codes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    new: dict[str, float],
    code: int,
    regressed: list[str],
) -> None:
    base_path = _session_file(tmp_path, "base", {"home": _figures()})
    new_path = _session_file(tmp_path, "new", {"home": _figures(**new)})
    out_json = tmp_path / "cmp.json"
    assert main(["compare", str(base_path), str(new_path), "--json", str(out_json)]) == code
    out = capsys.readouterr().out
    assert out.count("REGRESSION") == 2 * len(regressed)  # the endpoint and the total
    if regressed:
        assert f"{2 * len(regressed)} regression(s) beyond 10%" in out
    else:
        assert "no regressions beyond 10%" in out
    document = json.loads(out_json.read_text())
    assert document["regressed"] is bool(regressed)
    assert sorted({r["metric"] for r in document["regressions"]}) == sorted(regressed)
    home = next(row for row in document["rows"] if row["name"] == "home")
    assert home["metrics"]["p95"]["base"] == 20.0
    if "improvement" in name:
        assert home["metrics"]["p95"]["verdict"] == "improvement" and "better" in out


def test_the_tolerance_option_changes_the_verdict(tmp_path: Path) -> None:
    base_path = _session_file(tmp_path, "base", {"home": _figures()})
    new_path = _session_file(tmp_path, "new", {"home": _figures(p95=30.0)})
    assert main(["compare", str(base_path), str(new_path), "--tolerance", "60%"]) == 0
    assert main(["compare", str(base_path), str(new_path), "--tolerance", "0.2"]) == 3


def test_output_shows_values_side_by_side_with_deltas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base_path = _session_file(tmp_path, "base", {"home": _figures()})
    new_path = _session_file(tmp_path, "new", {"home": _figures(p95=30.0, error_rate=0.02)})
    main(["compare", str(base_path), str(new_path)])
    lines = capsys.readouterr().out.splitlines()
    p95 = next(line for line in lines if "p95 ms" in line and "REGRESSION" in line).split()
    assert p95[-5:] == ["20.00", "30.00", "+10.00", "+50.0%", "REGRESSION"]
    errors = next(line for line in lines if "err %" in line).split()
    assert errors[-6:] == ["0.00%", "2.00%", "+2.00", "pt", "n/a", "REGRESSION"]


def test_endpoints_in_only_one_session_are_noted_not_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base_path = _session_file(tmp_path, "base", {"home": _figures(), "old": _figures()})
    new_path = _session_file(tmp_path, "new", {"home": _figures(), "fresh": _figures()})
    assert main(["compare", str(base_path), str(new_path)]) == 0
    out = capsys.readouterr().out
    assert "old: only in the base session" in out and "fresh: only in the new session" in out


def test_compare_sessions_orders_rows_base_first_then_new_then_total() -> None:
    base = session_from_document(crafted_document({"a": BASE_FIGURES, "b": BASE_FIGURES}), "b.toml")
    new = session_from_document(crafted_document({"b": BASE_FIGURES, "c": BASE_FIGURES}), "n.toml")
    comparison = compare_sessions(base, new)
    assert [row.name for row in comparison.rows] == ["a", "b", "c", "TOTAL"]
    assert comparison.rows[0].changes == () and not comparison.regressed


def test_a_bad_tolerance_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _session_file(tmp_path, "base", {"home": _figures()})
    assert main(["compare", str(path), str(path), "--tolerance", "lots"]) == 2
    assert capsys.readouterr().err == (
        'error: --tolerance: expected a percentage like 10% or a fraction like 0.1, got "lots"\n'
    )


def test_a_bad_latency_floor_is_a_usage_error(tmp_path: Path) -> None:
    path = _session_file(tmp_path, "base", {"home": _figures()})
    with pytest.raises(SystemExit) as info:
        main(["compare", str(path), str(path), "--latency-floor", "fast"])
    assert info.value.code == 2
