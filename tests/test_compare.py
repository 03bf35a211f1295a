"""Compare: the verdict rules, table-driven, and the `compare` command's output and exit codes."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jsonschema
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
    compare_sessions,
    judge,
    parse_tolerance,
)
from stressdeck.sessions.compare_schema import comparison_schema
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


NOISY = [
    # metric, base, new, noise, verdict: beyond the tolerance but not beyond the noise
    ("p95", 20.0, 26.0, 0.30, SAME),  # log(26/20) = 0.26 < 0.30
    ("p95", 20.0, 28.0, 0.30, REGRESSION),  # 0.34 > 0.30
    ("rps", 100.0, 80.0, 0.25, SAME),  # log(100/80) = 0.22
    ("rps", 100.0, 70.0, 0.25, REGRESSION),
    ("error_rate", 0.02, 0.025, 0.006, SAME),  # +0.5 pt within ±0.6 pt
    ("error_rate", 0.02, 0.03, 0.006, REGRESSION),
    ("error_rate", 0.02, 0.01, 0.006, IMPROVEMENT),
]


@pytest.mark.parametrize(("metric", "base", "new", "noise", "verdict"), NOISY)
def test_judge_against_noise(
    metric: str, base: float, new: float, noise: float, verdict: str
) -> None:
    assert judge(metric, base, new, T, noise=noise) == verdict


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
        assert f"verdict: regression: {2 * len(regressed)} figure(s) beyond 10% and beyond" in out
    else:
        assert "verdict: no change beyond 10% and the noise" in out
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
    # The crafted timelines hold the same p95 every second: no between-second noise.
    p95 = next(line for line in lines if " p95 " in line and "REGRESSION" in line)
    assert p95.split()[-9:] == (
        "20.00 ms [20.00–20.00] 30.00 ms [30.00–30.00] +50.0 % REGRESSION".split()
    )
    # 0 of 1,000 and 20 of 1,000 errors: Wilson intervals, a +2 point change.
    errors = next(line for line in lines if "err %" in line)
    assert errors.split()[-9:] == (
        "0.00 % [0.00–0.38] 2.00 % [1.30–3.07] +2.00 pt REGRESSION".split()
    )


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


# -- noise, inconclusive verdicts, several runs a side, formats ----------------------------------


def _timeline_file(tmp_path: Path, name: str, p95s: list[float], **figures: float) -> Path:
    """A crafted session whose per-second p95 is ``p95s`` (one point a second)."""
    document = crafted_document({"home": _figures(**figures)})
    for point, p95 in zip(document["results"]["timeline"], p95s, strict=False):
        point["p95"] = p95
    document["results"]["timeline"] = document["results"]["timeline"][: len(p95s)]
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(document))
    return path


SWINGING = [16.0, 24.0, 20.0, 22.0, 18.0, 20.0, 24.0, 16.0, 20.0, 20.0]
WILD = [14.0, 26.0, 10.0, 34.0, 20.0, 30.0, 8.0, 22.0, 19.0, 16.0]


def test_a_change_beyond_the_tolerance_but_inside_the_noise_is_no_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """p95 +15 % when its seconds swing between 16 and 24 ms: the noise of the change at the
    decision level is about ±25 %, under three times the tolerance: no change."""
    base = _timeline_file(tmp_path, "base", SWINGING)
    new = _timeline_file(tmp_path, "new", [v * 1.15 for v in SWINGING], p95=23.0)
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    p95 = next(line for line in out.splitlines() if " p95 " in line)
    assert p95.split()[-4:] == ["+15.0", "%", "within", "noise"]
    assert "verdict: no change beyond 10% and the noise" in out


def test_noise_far_beyond_the_tolerance_is_inconclusive_not_no_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seconds between 8 and 34 ms: a +5 % change says nothing about a 10 % tolerance."""
    base = _timeline_file(tmp_path, "base", WILD)
    new = _timeline_file(tmp_path, "new", [v * 1.05 for v in WILD], p95=21.0)
    assert main(["compare", str(base), str(new)]) == 4
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "inconclusive home p95" in line)
    assert re.fullmatch(
        r"  inconclusive home p95: the noise \(±\d+ %\) is more than 3 times the tolerance "
        r"\(±10 %\): these runs cannot tell a change of that size",
        line,
    ), line


def test_the_same_change_on_steady_seconds_is_a_regression(tmp_path: Path) -> None:
    base = _timeline_file(tmp_path, "base", [20.0] * 10)
    new = _timeline_file(tmp_path, "new", [25.0] * 10, p95=25.0)
    assert main(["compare", str(base), str(new)]) == 3


def test_one_second_of_timeline_is_inconclusive_with_its_own_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _timeline_file(tmp_path, "base", [20.0])
    new = _timeline_file(tmp_path, "new", [20.0] * 10, p95=40.0)
    assert main(["compare", str(base), str(new)]) == 4
    out = capsys.readouterr().out
    assert "verdict: inconclusive: these runs cannot tell" in out
    assert (
        "  inconclusive home p95: base: 1 second(s) of timeline with requests: too short to measure "
        "the noise"
    ) in out
    # the error rate needs no timeline: judged, unchanged
    errors = next(line for line in out.splitlines() if "err %" in line)
    assert "inconclusive" not in errors


def test_too_few_requests_for_a_percentile_is_inconclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _session_file(tmp_path, "base", {"home": _figures(requests=500)})
    new = _session_file(tmp_path, "new", {"home": _figures(requests=500)})
    assert main(["compare", str(base), str(new)]) == 4
    out = capsys.readouterr().out
    assert "inconclusive home p99: base: 500 requests: too few to place p99" in out
    assert "inconclusive home p95" not in out


def test_a_saturated_generator_makes_latency_inconclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = crafted_document({"home": _figures()})
    document["results"]["generator"]["saturated_seconds"] = 4.0
    base = tmp_path / "base.toml"
    base.write_text(tomli_w.dumps(document))
    new = _session_file(tmp_path, "new", {"home": _figures()})
    assert main(["compare", str(base), str(new)]) == 4
    out = capsys.readouterr().out
    assert "base: the generator was saturated 4.0 of 10.0 s: it measured itself" in out


def test_several_runs_a_side_from_files_directories_and_globs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for i, p95 in enumerate([19.0, 20.0, 21.0]):
        _session_file(tmp_path / "a", f"run{i}", {"home": _figures(p95=p95)})
    for i, p95 in enumerate([29.0, 30.0, 31.0]):
        _session_file(tmp_path / "b", f"run{i}", {"home": _figures(p95=p95)})
    a_files = sorted(str(p) for p in (tmp_path / "a").iterdir())
    out_json = tmp_path / "cmp.json"
    assert main(["compare", *a_files, "--", str(tmp_path / "b"), "--json", str(out_json)]) == 3
    out = capsys.readouterr().out
    assert "3 vs 3 run(s)" in out
    p95 = next(line for line in out.splitlines() if " p95 " in line)
    # the mean of the runs; the interval from the spread between them: t(2) sd / sqrt(3)
    assert p95.split()[:2] == ["p95", "20.00"] and "30.00 ms" in p95
    document = json.loads(out_json.read_text())
    assert document["base"] == a_files and len(document["new"]) == 3
    assert document["rows"][0]["metrics"]["requests"]["base"] == 1000  # per run
    interval = document["rows"][0]["metrics"]["p95"]["base_interval"]
    assert interval["low"] < 20.0 < interval["high"]
    assert main(["compare", str(tmp_path / "a" / "run*.toml"), "--", str(tmp_path / "b")]) == 3


def test_a_glob_that_matches_nothing_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _session_file(tmp_path, "base", {"home": _figures()})
    assert main(["compare", str(path), "--", str(tmp_path / "nothing*.toml")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'nothing*.toml'}: no new session matches this pattern\n"


def test_three_sessions_without_a_separator_are_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_session_file(tmp_path, "base", {"home": _figures()}))
    assert main(["compare", path, path, path]) == 2
    assert "expected BASE NEW, or BASE... -- NEW..." in capsys.readouterr().err


def test_baseline_directory_pairs_sessions_by_file_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "baseline").mkdir()
    (tmp_path / "now").mkdir()
    _session_file(tmp_path / "baseline", "login", {"home": _figures()})
    _session_file(tmp_path / "baseline", "search", {"home": _figures()})
    _session_file(tmp_path / "now", "login", {"home": _figures()})
    _session_file(tmp_path / "now", "search", {"home": _figures(p95=30.0)})
    assert main(["compare", "--baseline", str(tmp_path / "baseline"), str(tmp_path / "now")]) == 3
    out = capsys.readouterr().out
    assert out.count("verdict: no change") == 1 and out.count("verdict: regression") == 1
    missing = tmp_path / "other.toml"
    missing.write_text((tmp_path / "now" / "login.toml").read_text())
    assert main(["compare", "--baseline", str(tmp_path / "baseline"), str(missing)]) == 2
    assert "no baseline session named like other.toml" in capsys.readouterr().err


def test_markdown_format_is_a_pr_comment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _session_file(tmp_path, "base", {"home": _figures()})
    new = _session_file(tmp_path, "new", {"home": _figures(p95=30.0)})
    assert main(["compare", str(base), str(new), "--format", "markdown"]) == 3
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("**verdict: regression: 2 figure(s) beyond 10%")
    assert (
        "| endpoint | metric | base [95 % interval] | new [95 % interval] | change | verdict |"
        in lines
    )
    assert (
        "|  | p95 | 20.00 ms [20.00–20.00] | 30.00 ms [30.00–30.00] | +50.0 % | REGRESSION |"
        in lines
    )


def test_json_format_prints_the_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _session_file(tmp_path, "base", {"home": _figures()})
    new = _session_file(tmp_path, "new", {"home": _figures(error_rate=0.05)})
    assert main(["compare", str(base), str(new), "--format", "json"]) == 3
    document = json.loads(capsys.readouterr().out)
    assert document["verdict"] == "regression"
    errors = document["rows"][0]["metrics"]["error_rate"]
    assert errors["verdict"] == "regression" and errors["new_interval"]["value"] == 0.05
    assert document["rows"][0]["status_changes"] == ["200 down 1000 → 950", "500 new (50)"]


SCHEMA = Path(__file__).parent.parent / "compare.schema.json"


def test_the_published_compare_schema_is_the_generated_one() -> None:
    """Regenerate with ``python -m stressdeck.sessions.compare_schema > compare.schema.json``."""
    assert json.loads(SCHEMA.read_text()) == comparison_schema()
    jsonschema.Draft202012Validator.check_schema(comparison_schema())


def test_compare_json_documents_match_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _timeline_file(tmp_path, "base", [20.0])  # inconclusive rows too
    new = _session_file(tmp_path, "new", {"home": _figures(p95=30.0), "fresh": _figures()})
    main(["compare", str(base), str(new), "--format", "json"])
    jsonschema.validate(json.loads(capsys.readouterr().out), comparison_schema())
    (tmp_path / "dir").mkdir()
    _session_file(tmp_path / "dir", "base", {"home": _figures()})
    _session_file(tmp_path / "dir", "new", {"home": _figures()})
    main(
        ["compare", "--baseline", str(tmp_path / "dir"), str(tmp_path / "dir"), "--format", "json"]
    )
    document = json.loads(capsys.readouterr().out)
    assert isinstance(document, list) and len(document) == 2
    jsonschema.validate(document, comparison_schema())


# -- what the tester needs beside the verdict ------------------------------------------------------


def test_a_side_on_a_busy_host_and_a_saturated_generator_are_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = crafted_document({"home": _figures()})
    document["host"]["noise"] = {"other_cpu_percent": 48.0, "load_average": 3.1, "seconds": 10.0}
    document["results"]["generator"] |= {
        "saturated_seconds": 1.0,
        "peak_cpu_percent": 97.0,
        "peak_loop_lag_ms": 80.0,
    }
    new = tmp_path / "new.toml"
    new.write_text(tomli_w.dumps(document))
    assert session_from_document(document, "x").host.noise.other_cpu_percent == 48.0
    base = _session_file(tmp_path, "base", {"home": _figures()})
    main(["compare", str(base), str(new)])
    out = capsys.readouterr().out
    assert (
        "warning: new ran on a busy host (the run): other processes used up to 48 % of its "
        "4 cores, load average 3.1"
    ) in out
    assert (
        "warning: new's generator was saturated 1.0 of 10.0 s (peak CPU 97 %, loop lag 80 ms)"
    ) in out
    assert "base ran on a busy host" not in out


def test_different_targets_clients_and_versions_are_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = crafted_document({"home": _figures()})
    document["plan"]["target"] = "http://127.0.0.1:8080"
    document["stressdeck_version"] = "0.2.0"
    document["results"]["summary"]["endpoints"]["home"]["client"] = "aiohttp"
    new = tmp_path / "new.toml"
    new.write_text(tomli_w.dumps(document))
    base = _session_file(tmp_path, "base", {"home": _figures()})
    main(["compare", str(base), str(new)])
    out = capsys.readouterr().out
    assert (
        "warning: the runs differ in target http://127.0.0.1:9 → http://127.0.0.1:8080, "
        "home client - → aiohttp, stressdeck 0.1.0 → 0.2.0"
    ) in out


def test_status_codes_are_diffed_beyond_counting_noise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base_doc = crafted_document({"home": _figures()})
    new_doc = crafted_document({"home": _figures()})
    base_doc["results"]["summary"]["endpoints"]["home"]["status_counts"] = {"200": 900, "403": 100}
    new_doc["results"]["summary"]["endpoints"]["home"]["status_counts"] = {
        "200": 895,
        "429": 100,
        "500": 5,  # 0 -> 5 of 1,000: beyond the two-proportion noise (±0.44 points)
    }
    for name, document in (("base", base_doc), ("new", new_doc)):
        (tmp_path / f"{name}.toml").write_text(tomli_w.dumps(document))
    main(["compare", str(tmp_path / "base.toml"), str(tmp_path / "new.toml")])
    out = capsys.readouterr().out
    assert "home: status codes 403 gone (was 100), 429 new (100), 500 new (5)" in out


def test_the_issues_error_rate_example_is_no_change_within_noise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2.01 % -> 2.48 % of 3,300 requests (66 -> 82 errors): +0.47 points against ±1.13 points
    of sampling noise (decision level): no change, where a fixed tolerance said regression."""
    base = _session_file(tmp_path, "base", {"home": _figures(requests=3300, error_rate=0.0201)})
    new = _session_file(tmp_path, "new", {"home": _figures(requests=3300, error_rate=0.0248)})
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    errors = next(line for line in out.splitlines() if "err %" in line)
    assert errors.split()[-10:] == (
        "2.00 % [1.58–2.54] 2.48 % [2.01–3.07] +0.48 pt within noise".split()
    )


def _host_file(tmp_path: Path, name: str, other_cpu: float, **figures: float) -> Path:
    document = crafted_document({"home": _figures(**figures)})
    document["host"] |= {
        "cores": 2,
        "noise": {"other_cpu_percent": other_cpu, "load_average": 3.0, "seconds": 10.0},
    }
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(document))
    return path


def test_sides_on_hosts_unalike_make_latency_and_rps_inconclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Other processes left the run 80 % of the cores in base, 16 % in new: p95 +50 % may
    be the host's; the error rate is counted, not timed, and still judged."""
    base = _host_file(tmp_path, "base", 20.0)
    new = _host_file(tmp_path, "new", 84.0, p95=30.0)
    assert main(["compare", str(base), str(new)]) == 4
    out = capsys.readouterr().out
    reason = (
        "the host differed between the sides: other processes left the run 80 % of its "
        "cores in base, 16 % in new (alike means within a factor of 1.5)"
    )
    for metric in ("rps", "p50", "p95", "p99"):
        assert f"  inconclusive home {metric}: {reason}" in out
    errors = next(line for line in out.splitlines() if "err %" in line)
    assert "inconclusive" not in errors


@pytest.mark.parametrize(
    ("base_busy", "new_busy"),
    [
        (84.0, 80.0),  # 16 % and 20 % of the cores left: alike
        (98.0, 95.0),  # 2 % and 5 % left: saturated on both sides (taken as 10 %), alike
    ],
)
def test_a_host_busy_alike_on_both_sides_still_judges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], base_busy: float, new_busy: float
) -> None:
    """Both sides on a host whose other processes took most of its cores (one burnt core, a
    target and more): it slows both alike; p95 +50 % on steady seconds is a regression."""
    base = _host_file(tmp_path, "base", base_busy)
    new = _host_file(tmp_path, "new", new_busy, p95=30.0)
    assert main(["compare", str(base), str(new)]) == 3
    out = capsys.readouterr().out
    assert "the host differed" not in out
    p95 = next(line for line in out.splitlines() if " p95 " in line)
    assert p95.endswith("REGRESSION")


def test_a_host_that_left_half_as_much_differed_whatever_the_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """90 % busy against 80 %: ten points, but the run had half the CPU (10 % against 20 %)."""
    base = _host_file(tmp_path, "base", 80.0)
    new = _host_file(tmp_path, "new", 90.0, p95=30.0)
    assert main(["compare", str(base), str(new)]) == 4
    assert (
        "  inconclusive home p95: the host differed between the sides: other processes left "
        "the run 20 % of its cores in base, 10 % in new (alike means within a factor of 1.5)"
    ) in capsys.readouterr().out
