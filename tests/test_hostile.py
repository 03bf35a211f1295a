"""Hostile input: bad files never crash a parser; outside text never reaches the terminal raw.

Property tests feed the profile, threshold and session parsers random documents, mutated
copies of the shipped profiles (keys deleted, types changed, values inserted) and random
bytes; the only exception allowed out is ``InputError``, whose ``line()`` is one line.
Each parser gets 300 examples in the everyday run and 2,000 in CI's thorough pass (the
Hypothesis profiles in conftest.py); strategies stay cheap so a test runs in seconds. The escaping tests run ``python -m stressdeck run`` in a subprocess with
names and errors full of terminal escapes and Rich markup, and read the raw bytes it prints.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from faults import FaultServer
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import stressdeck
from stressdeck.core.errors import InputError
from stressdeck.engine.plan import build_plan
from stressdeck.profiles.profile import load_profile, parse_profile
from stressdeck.profiles.thresholds import METRICS, Threshold, parse_threshold
from stressdeck.sessions.session import load_session

ROOT = Path(__file__).parent.parent
SEED_FILES = [
    *sorted((ROOT / "profiles").glob("demo-*.toml")),
    ROOT / "src" / "stressdeck" / "profiles" / "demo.toml",
]
# How many examples each property tries comes from the Hypothesis profile (conftest.py):
# a few hundred in the everyday run, 2,000 with --hypothesis-profile=thorough (CI).
PROPERTY = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FORMATS = st.sampled_from([".toml", ".json"])
KINDS = st.sampled_from(["bytes", "text", "dump"])  # random bytes, mutated text, mutated document

# -- strategies ------------------------------------------------------------------------------

# Keys the parsers know, so random documents get past "unknown key" often enough to go deep.
KEYS = sorted(
    {
        "name",
        "description",
        "base_url",
        "defaults",
        "load",
        "endpoints",
        "thresholds",
        "abort_on_fail",
        "abort_grace",
        "insecure",
        "flow",
        "data",
        "metrics_url",
        "timeout",
        "headers",
        "model",
        "users",
        "rate",
        "max_in_flight",
        "duration",
        "requests",
        "stages",
        "preset",
        "target",
        "method",
        "path",
        "url",
        "query",
        "json",
        "body",
        "weight",
        "expect",
        "think",
        "extract",
        "file",
        "mode",
        "per",
    }
)
# Values at the edges of what some field accepts.
TRICKY_STRINGS = [
    "",
    " ",
    "0",
    "1s",
    "500ms",
    "-1s",
    "0s",
    "1.5m",
    "2h",
    "1e3s",
    "9" * 400 + "s",
    "inf",
    "nan",
    "µs",
    "p95 < 200ms",
    "error_rate < 1%",
    "rps > 100",
    "p95 <",
    "GET",
    "post",
    "BREW",
    "closed",
    "open",
    "light",
    "soak",
    "http://",
    "http://127.0.0.1:1",
    "https://[::1",
    "ftp://x",
    "http://a:99999/",
    "/",
    "/x",
    "x",
    "/{id}",
    "/{row.email}",
    "{random.uuid}",
    "{random.nope}",
    "${HOME}",
    "${NOPE_NOT_SET}",
    "$.id",
    "$.a[0].b",
    "$..",
    "header:",
    "header:X",
    "regex:(",
    "regex:(\\d+)",
    "users.csv",
    "rows.jsonl",
    "cycle",
    "stop",
    "iteration",
    "user",
    "\x1b[31m",
    "\x1b]0;pwned\x07",
    "[bold red]x[/]",
    "a\nb",
    "\x00",
    "\ud800",
    "é" * 50,
]
HUGE_INTS = [2**63, -(2**63) - 1, 10**309, -(10**309), 10**400]  # JSON carries any of these
EDGE_VALUES = [
    *HUGE_INTS,
    float("nan"),
    float("inf"),
    -float("inf"),
    1e308,
    0,
    -1,
    0.5,
    True,
    "",
    None,
    [],
    {},
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from(HUGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(TRICKY_STRINGS),
    st.text(max_size=12),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=6,
)
# Ways a hand edit or another tool gets a value's type wrong.
RETYPES: list[Callable[[Any], Any]] = [
    str,
    lambda v: [v],
    lambda v: {"value": v},
    lambda v: len(v) if isinstance(v, (str, list, dict)) else -1,
    lambda v: float(len(str(v))) + 0.5,
    lambda v: not v,
]


def _containers(node: Any, found: list[Any]) -> list[Any]:
    """Every dict and list inside ``node``, ``node`` included."""
    if isinstance(node, (dict, list)):
        found.append(node)
        for child in node.values() if isinstance(node, dict) else node:
            _containers(child, found)
    return found


@st.composite
def mutated(
    draw: st.DrawFn, seeds: list[dict[str, Any]], extra_keys: st.SearchStrategy[str] = keys
) -> dict[str, Any]:
    """A seed document with 1-4 mutations: a key deleted, a value replaced or retyped, one added,
    or a known key set to an edge value (a huge integer, NaN, an empty list ...)."""
    document = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        node = draw(st.sampled_from(_containers(document, [])))
        action = draw(st.sampled_from(["delete", "replace", "insert", "retype", "edge"]))
        retype = RETYPES[draw(st.integers(0, len(RETYPES) - 1))]
        if isinstance(node, dict) and action == "edge":
            node[draw(st.sampled_from(KEYS))] = copy.deepcopy(draw(st.sampled_from(EDGE_VALUES)))
        elif isinstance(node, dict):
            if node and action != "insert":
                key = draw(st.sampled_from(sorted(node)))
                if action == "delete":
                    del node[key]
                else:
                    node[key] = draw(values) if action == "replace" else retype(node[key])
            else:
                node[draw(extra_keys)] = draw(values)
        elif node and action != "insert":
            index = draw(st.integers(0, len(node) - 1))
            if action == "delete":
                del node[index]
            else:
                node[index] = draw(values) if action == "replace" else retype(node[index])
        else:
            node.insert(draw(st.integers(0, len(node))), draw(values))
    return document


TEXT_PIECES = st.sampled_from(
    [
        '"',
        "'",
        "[",
        "]",
        "{",
        "}",
        "=",
        ",",
        "\n",
        "[[endpoints]]\n",
        "[load]\n",
        "\\",
        "\\u00",
        "1" + "0" * 5000,
        "nan",
        "inf",
        "1e400",
        "\x00",
        "\x1b[31m",
        '"""',
    ]
) | st.text(max_size=10)


def _mutate_text(text: str, data: st.DataObject) -> str:
    """Cut, insert and duplicate slices of a file's text."""
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["cut", "insert", "duplicate"]))
        if action == "cut":
            text = text[:position] + text[position + data.draw(st.integers(1, 40)) :]
        elif action == "insert":
            text = text[:position] + data.draw(TEXT_PIECES) + text[position:]
        else:
            text = text[:position] + text[position : position + 60] + text[position:]
    return text


def _dump(document: Any, suffix: str) -> str | None:
    """The document as file text, or None when the format cannot hold it (TOML has no null)."""
    try:
        if suffix == ".json":
            return json.dumps(document)
        return tomli_w.dumps(document)
    except (TypeError, ValueError):
        return None


def _file_content(
    data: st.DataObject,
    kind: str,
    suffix: str,
    seeds: list[dict[str, Any]],
    seed_keys: st.SearchStrategy[str] = keys,
) -> bytes:
    """Random bytes, the text of a valid file mutated, or a mutated document written out."""
    if kind == "bytes":
        return data.draw(st.binary(max_size=300))
    if kind == "text":
        text = _mutate_text(_dump(data.draw(st.sampled_from(seeds)), suffix) or "", data)
    else:
        dumped = _dump(data.draw(mutated(seeds, seed_keys)), suffix)
        assume(dumped is not None)  # TOML cannot hold a null
        text = dumped or ""
    return text.encode("utf-8", errors="surrogatepass")


# -- the invariant ---------------------------------------------------------------------------


def assert_only_input_error(call: Callable[[], Any], fields: set[str]) -> Any:
    """Run a parser: it returns, or raises InputError with a one-line message; nothing else."""
    try:
        result = call()
    except InputError as exc:
        line = exc.line()
        assert line and len(line.splitlines()) == 1 and "\r" not in line, repr(line)
        # --hypothesis-show-statistics tells how deep the examples get.
        where = exc.field.split(".")[0].split("[")[0]
        label = where if where in fields else "another field" if where else "the file"
        event(f"InputError at {label}")
        return None
    event("accepted")
    return result


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


# -- profiles --------------------------------------------------------------------------------

SEEDS = [tomllib.loads(path.read_text(encoding="utf-8")) for path in SEED_FILES]


def _parse_and_build(document: dict[str, Any]) -> None:
    profile = parse_profile(document, "hostile.toml")
    build_plan(profile, env={})  # a profile that validates must also build into a plan


@pytest.mark.fuzz
@PROPERTY
@given(st.one_of(mutated(SEEDS), st.dictionaries(keys, values, max_size=6)))
def test_profile_documents_raise_only_input_error(document: dict[str, Any]) -> None:
    assert_only_input_error(lambda: _parse_and_build(document), set(KEYS))


@pytest.mark.fuzz
@PROPERTY
@given(data=st.data(), suffix=FORMATS, kind=KINDS)
def test_profile_files_raise_only_input_error(
    scratch: Path, data: st.DataObject, suffix: str, kind: str
) -> None:
    path = scratch / f"profile{suffix}"
    path.write_bytes(_file_content(data, kind, suffix, SEEDS))
    assert_only_input_error(lambda: load_profile(path), set(KEYS))


def test_every_seed_profile_loads() -> None:
    """The seeds are valid: every mutation starts from a good document."""
    for path in SEED_FILES:
        load_profile(path)


BASE = '"endpoints": [{"name": "a", "url": "http://127.0.0.1:1/"}]'


@pytest.mark.parametrize(
    ("name", "text"),
    ids=["int-json", "int-toml", "timeout", "stage-target"],
    argvalues=[
        ("huge.json", '{"name": "x", "n": 1' + "0" * 5000 + "}"),
        ("huge.toml", 'name = "x"\nn = 1' + "0" * 5000 + "\n"),
        (
            "timeout.json",
            '{"name": "x", "defaults": {"timeout": 1' + "0" * 400 + "}, " + BASE + "}",
        ),
        (
            "target.json",
            '{"name": "x", "load": {"stages": [{"duration": "1s", "target": 1'
            + "0" * 400
            + "}]}, "
            + BASE
            + "}",
        ),
    ],
)
def test_known_crashers_are_input_errors(tmp_path: Path, name: str, text: str) -> None:
    """Found by the property tests: they escaped as ValueError / OverflowError tracebacks."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError):
        load_profile(path)


@pytest.mark.parametrize(
    ("name", "rows"),
    ids=["csv-field", "jsonl-depth"],
    argvalues=[
        ("rows.csv", "email\n" + "x" * 200_000 + "\n"),  # a field past csv's 128 KiB limit
        ("rows.jsonl", '{"email": ' + "[" * 5000 + "]" * 5000 + "}\n"),  # past the recursion limit
    ],
)
def test_hostile_data_files_are_input_errors(tmp_path: Path, name: str, rows: str) -> None:
    (tmp_path / name).write_text(rows)
    profile = tmp_path / "p.json"
    profile.write_text(
        json.dumps(
            {
                "name": "x",
                "data": name,
                "endpoints": [{"name": "a", "url": "http://127.0.0.1:1/{row.email}"}],
            }
        )
    )
    with pytest.raises(InputError):
        load_profile(profile)


# -- thresholds ------------------------------------------------------------------------------

valid_threshold = st.builds(
    lambda metric, op, number, unit, space: f"{metric}{space}{op}{space}{number}{unit}",
    st.sampled_from(METRICS),
    st.sampled_from(["<", "<=", ">", ">="]),
    st.sampled_from(["0", "1", "1.5", "200", "0.01", "9" * 400, "٣"]),
    st.sampled_from(["", "ms", "s", "us", "%"]),
    st.sampled_from(["", " ", "\t"]),
)


@st.composite
def mutated_threshold(draw: st.DrawFn) -> str:
    """A valid-looking expression with characters cut, swapped or inserted."""
    text = draw(valid_threshold)
    position = draw(st.integers(0, len(text)))
    piece = draw(
        st.sampled_from(["", " ", "\n", "=", "<", "%", ".", "-", "e3", "\x1b[31m", "\xa0", "\x00"])
        | st.text(max_size=3)
    )
    return text[:position] + piece + text[position + draw(st.integers(0, 2)) :]


@pytest.mark.fuzz
@PROPERTY
@given(st.one_of(valid_threshold, mutated_threshold(), st.text(max_size=40)))
def test_thresholds_raise_only_input_error(expr: str) -> None:
    result = assert_only_input_error(
        lambda: parse_threshold(expr, "hostile.toml", "thresholds[0]"), {"thresholds"}
    )
    if result is not None:
        assert isinstance(result, Threshold) and result.metric in METRICS
        assert "\n" not in result.expr


# -- sessions (a colleague's parser: tested when it exists) -----------------------------------

SESSION_FIELDS = {
    "format_version",
    "stressdeck_version",
    "created",
    "host",
    "plan",
    "results",
    "histograms",
    "replay_of",
}
SESSION_KEYS = (
    st.sampled_from(
        [
            *SESSION_FIELDS,
            "profile_json",
            "load",
            "stages",
            "summary",
            "total",
            "endpoints",
            "timeline",
            "control_log",
            "command",
            "latency_ms",
            "value",
            "overrides",
        ]
    )
    | keys
)


@functools.cache
def _session_seed_documents() -> tuple[dict[str, Any], ...]:
    """A session as load_session reads it: one with the profile as a table, one as JSON text."""
    from hdrh.histogram import HdrHistogram

    histogram = HdrHistogram(1, 3_600_000_000, 3)
    for value in (900, 1200, 5000, 250_000):
        histogram.record_value(value)
    encoded = histogram.encode().decode("ascii")
    endpoint = {
        "requests": 10,
        "errors": 1,
        "rps": 5.0,
        "error_rate": 0.1,
        "status_counts": {"200": 9, "500": 1},
        "error_counts": {},
        "bytes": 100,
        "dropped": 0,
        "cancelled": 0,
        "skipped": 0,
        "latency_ms": {"p50": 1.0, "p95": 5.0, "p99": 9.0},
        "service_ms": {"p50": 1.0},
        "ttfb_ms": {"p50": 0.5, "p95": 1.0, "p99": 2.0},
    }
    document = {
        "format_version": 1,
        "stressdeck_version": stressdeck.__version__,
        "created": "2024-01-01T00:00:00+00:00",
        "host": {"cores": 2, "ram_bytes": 2**30, "os": "Linux", "python": "3.11.7"},
        "plan": {
            "name": "seed",
            "source": "seed.toml",
            "target": "http://127.0.0.1:9",
            "overrides": {"users": 2, "duration": 2.0},
            "load": {
                "model": "closed",
                "users": 2,
                "duration": 2.0,
                "max_duration": 600.0,
                "tick": 0.25,
                "stages": [{"duration": 1.0, "target": 2.0}],
            },
            "profile": SEEDS[0],
        },
        "results": {
            "name": "seed",
            "target": "http://127.0.0.1:9",
            "model": "closed",
            "elapsed": 2.0,
            "stop_reason": "duration reached",
            "summary": {"total": endpoint, "endpoints": {"home": copy.deepcopy(endpoint)}},
            "thresholds": [{"expr": "p95 < 200ms", "endpoint": "home", "value": 5.0, "ok": True}],
            "control_log": [
                {"offset": 1.0, "command": "users", "value": 3},
                {"offset": 1.5, "command": "pause"},
            ],
            "timeline": [
                {
                    "t": 1.0,
                    "span": 1.0,
                    "requests": 5,
                    "rps": 5.0,
                    "errors": 0,
                    "p50": 1.0,
                    "p95": 5.0,
                    "p99": 9.0,
                    "users": 2,
                    "dropped": 0,
                }
            ],
            "generator": {
                "loop_lag_ms": 0.1,
                "send_lag_ms": 0.1,
                "cpu_percent": 5.0,
                "processes": 1,
            },
        },
        "histograms": {"total/latency": encoded, "home/latency": encoded},
    }
    with_json_profile = copy.deepcopy(document)
    with_json_profile["plan"]["profile_json"] = json.dumps(with_json_profile["plan"].pop("profile"))
    return document, with_json_profile


@pytest.mark.fuzz
@PROPERTY
@given(data=st.data(), suffix=FORMATS, kind=KINDS)
def test_session_files_raise_only_input_error(
    scratch: Path, data: st.DataObject, suffix: str, kind: str
) -> None:
    path = scratch / f"session{suffix}"
    path.write_bytes(
        _file_content(data, kind, suffix, list(_session_seed_documents()), SESSION_KEYS)
    )
    assert_only_input_error(lambda: load_session(path), SESSION_FIELDS)


def test_session_seeds_load(scratch: Path) -> None:
    for index, seed in enumerate(_session_seed_documents()):
        for suffix in (".toml", ".json"):
            path = scratch / f"seed{index}{suffix}"
            path.write_text(_dump(seed, suffix) or "")
            load_session(path)


@pytest.mark.parametrize("where", ["profile_json", "tick"])
def test_session_known_crashers_are_input_errors(tmp_path: Path, where: str) -> None:
    """Found by the property tests: they escaped as ValueError / OverflowError tracebacks."""
    seed = copy.deepcopy(_session_seed_documents()[1])
    if where == "profile_json":  # json.loads: ValueError (digit limit), not JSONDecodeError
        seed["plan"]["profile_json"] = '{"a": 1' + "0" * 5000 + "}"
    else:  # math.isfinite(an int past float range): OverflowError
        seed["plan"]["load"]["tick"] = 10**400
    path = tmp_path / "crasher.json"
    path.write_text(json.dumps(seed))
    with pytest.raises(InputError):
        load_session(path)


# -- escaping: what the CLI prints -------------------------------------------------------------

MARKUP = "[bold red]x[/]"
CSI = "\x1b[31m"
OSC = "\x1b]0;pwned\x07"
STRESSDECK = [sys.executable, "-m", "stressdeck"]
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 and C1 controls but tab and newline


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Raw bytes, not text: an escape must not hide behind a decoding step."""
    return subprocess.run([*STRESSDECK, *args], capture_output=True, timeout=timeout, cwd=ROOT)


def assert_no_raw_escapes(output: bytes) -> None:
    assert b"\x1b" not in output and b"\x07" not in output, output
    found = _CONTROL.search(output.decode("utf-8", errors="replace"))  # C1 CSI (U+009B) too
    assert found is None, (found, output)


def test_run_output_shows_hostile_names_literally(tmp_path: Path, client: str) -> None:
    with FaultServer() as server:
        profile = tmp_path / "hostile.json"
        profile.write_text(
            json.dumps(
                {
                    "name": f"{MARKUP}{CSI}{OSC}",
                    "base_url": server.url,
                    "endpoints": [
                        {"name": f"{MARKUP}{CSI}", "path": "/ok", "thresholds": ["p99 < 10s"]},
                        # The server's reason phrase, headers and body are hostile too.
                        {"name": OSC, "path": "/hostile", "expect": [200]},
                    ],
                }
            )
        )
        result = run_cli(
            "run", str(profile), "--requests", "20", "--users", "2", "--client", client
        )
    assert result.returncode in (0, 3), result.stderr  # 3: the 500s may fail a threshold
    assert_no_raw_escapes(result.stdout)
    assert_no_raw_escapes(result.stderr)
    stdout = result.stdout.decode("utf-8")
    assert MARKUP in stdout  # markup is shown as text, not interpreted
    assert "\\x1b[31m" in stdout and "\\x1b]0;pwned\\x07" in stdout  # escapes shown, escaped
    assert "TOTAL" in stdout and "status codes: 200: " in stdout
    assert f"client: {client}" in stdout


@pytest.mark.parametrize(
    ("file_name", "content"),
    ids=["toml-name", "missing", "key", "method", "threshold", "url"],
    argvalues=[
        (f"bad{CSI}{OSC}[bold red]x.toml", 'name = "unterminated\n'),  # bad TOML, hostile file name
        (f"gone{CSI}.toml", None),  # no such file
        ("key.json", json.dumps({"name": "x", OSC: 1, "endpoints": []})),  # hostile unknown key
        (
            "method.json",
            json.dumps(
                {
                    "name": "x",
                    "endpoints": [
                        {"name": "a", "url": "http://127.0.0.1:1/", "method": CSI + MARKUP}
                    ],
                }
            ),
        ),
        (
            "threshold.json",
            json.dumps(
                {
                    "name": "x",
                    "thresholds": [OSC + "p95 < 1ms"],
                    "endpoints": [{"name": "a", "url": "http://127.0.0.1:1/"}],
                }
            ),
        ),
        (
            "url.json",
            json.dumps({"name": "x", "endpoints": [{"name": "a", "url": f"http://{CSI}/"}]}),
        ),
    ],
)
def test_bad_input_errors_cannot_inject(
    tmp_path: Path, file_name: str, content: str | None
) -> None:
    path = tmp_path / file_name
    if content is not None:
        path.write_text(content)
    result = run_cli("run", str(path))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert_no_raw_escapes(result.stderr)
    assert_no_raw_escapes(result.stdout)
    lines = result.stderr.decode("utf-8").splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    if "[bold red]x" in file_name:
        assert "[bold red]x" in lines[0] and "\\x1b[31m" in lines[0]  # shown, and shown escaped


@pytest.mark.parametrize(
    "args",
    ids=["duration", "model", "base-url"],
    argvalues=[
        ["--duration", OSC],
        ["--model", CSI],
        ["--base-url", f"http://{CSI}/"],
    ],
)
def test_bad_options_cannot_inject(args: list[str]) -> None:
    result = run_cli("run", "profiles/demo-health.toml", *args)
    assert result.returncode == 2
    assert_no_raw_escapes(result.stderr)
    assert_no_raw_escapes(result.stdout)
