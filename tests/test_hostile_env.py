"""Hostile environment, round two: secrets in URLs, signals, header injection, where the load
goes, memory per endpoint, and the small ones (BOM, huge integers, NaN gauges, curl options).
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
import tomllib
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from conftest import ServerThread, counting_app
from waiting import until

from stressdeck.cli import main
from stressdeck.core.errors import InputError
from stressdeck.core.redact import REDACTED, redact_url
from stressdeck.engine.overrides import Overrides
from stressdeck.engine.plan import build_plan
from stressdeck.engine.stats import Recorder, Totals
from stressdeck.observe.metrics import _Series, parse_exposition, parse_series
from stressdeck.profiles.importers import import_command
from stressdeck.profiles.profile import load_profile, parse_profile
from stressdeck.sessions.session import load_session

STRESSDECK = [sys.executable, "-m", "stressdeck"]


def _document(base_url: str, **extra: object) -> dict:
    return {
        "name": "p",
        "base_url": base_url,
        "load": {"users": 2, "requests": 4},
        "endpoints": [{"name": "ok", "path": "/ok"}],
        **extra,
    }


# -- 5. memory per endpoint ------------------------------------------------------------------------


@pytest.mark.slow
def test_totals_cost_well_under_a_megabyte_per_endpoint() -> None:
    """Folding a realistic delta into 500 endpoints: HDR counts are kept sparse, not as three
    184 KB arrays per endpoint (1,000 endpoints took 1.7 GB before)."""
    endpoints = 500
    rng = np.random.default_rng(3)
    recorder = Recorder(endpoints)
    tracemalloc.start()
    try:
        totals = Totals([f"e{i}" for i in range(endpoints)])
        for tick in range(4):
            for endpoint in range(endpoints):
                for latency in rng.lognormal(8, 1, 20):
                    recorder.record_response(endpoint, 200, True, latency, latency, latency / 2, 10)
            totals.add(recorder.cut(tick, tick + 1))
        summaries = [t.summary(4.0) for t in totals.endpoints]
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(s.requests for s in summaries) == endpoints * 4 * 20
    assert current / endpoints < 50_000, f"{current / endpoints:,.0f} bytes per endpoint"
    assert peak / endpoints < 100_000, f"peak {peak / endpoints:,.0f} bytes per endpoint"


# -- 6. secrets in URLs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/ok?token=URLTOKEN7", f"http://h/ok?token={REDACTED}"),
        ("http://h/ok?a=1&api_key=K&b=2", f"http://h/ok?a=1&api_key={REDACTED}&b=2"),
        ("http://h/ok?token=${TOKEN}", "http://h/ok?token=${TOKEN}"),
        ("http://h/ok?page=2#frag", "http://h/ok?page=2#frag"),
        ("http://u:pw@h:8/m?token=T", f"http://{REDACTED}@h:8/m?token={REDACTED}"),
        ("http://u:pa@ss9@127.0.0.1:9/x", f"http://{REDACTED}@127.0.0.1:9/x"),
        ("https://user@h/x", f"https://{REDACTED}@h/x"),
        ("http://${USER}:${PASS}@h/x", "http://${USER}:${PASS}@h/x"),
        ("http://h/a@b", "http://h/a@b"),  # an @ in the path is no userinfo
        ("/metrics?token=T", f"/metrics?token={REDACTED}"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_secrets_in_urls_are_never_printed_or_saved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ServerThread(counting_app()) as server:
        host = server.url.removeprefix("http://")
        document = _document(server.url)
        document["endpoints"] = [{"name": "ok", "url": f"{server.url}/ok?token=URLTOKEN7"}]
        profile = tmp_path / "p.json"
        profile.write_text(json.dumps(document))
        saved = tmp_path / "s.json"
        results = tmp_path / "r.json"
        metrics_url = f"http://user:pa@ss9@{host}/metrics?token=METRICTOKEN"
        code = main(
            [
                "run",
                str(profile),
                "--processes",
                "1",
                "--metrics-url",
                metrics_url,
                "--save",
                str(saved),
                "--json",
                str(results),
            ]
        )
        assert code == 0
    out = capsys.readouterr()
    for text in (out.out, out.err, saved.read_text(), results.read_text()):
        for secret in ("URLTOKEN7", "METRICTOKEN", "ss9", "pa@"):
            assert secret not in text, (secret, text[:2000])
    assert f"http://{REDACTED}@{host}/metrics?token={REDACTED}" in out.out


# -- 7. signals ---------------------------------------------------------------------------------


def _catches_stop_signals(pid: int) -> bool:
    """The process has its own handlers for SIGINT, SIGTERM and SIGHUP (the kernel's view)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    line = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    caught = int(line.split()[1], 16)
    return all(caught >> (s - 1) & 1 for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP))


def _signalled_run(
    tmp_path: Path, signum: int, after: float, *extra: str, under_way: bool = False
) -> tuple[int, str, str]:
    """Start a headless run and send ``signum`` ``after`` seconds past the moment its code
    took the stop signals (the interpreter's own start-up before that is not ours to
    handle), or with ``under_way`` once it printed its first progress line."""
    with ServerThread(counting_app()) as server:
        profile = tmp_path / "p.json"
        profile.write_text(json.dumps(_document(server.url, load={"users": 2})))
        process = subprocess.Popen(
            [*STRESSDECK, "run", str(profile), "--duration", "20s", *extra],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        head = ""
        try:
            until(
                lambda: _catches_stop_signals(process.pid) or process.poll() is not None,
                20,
                "the run installed its signal handlers",
            )
            assert process.poll() is None, process.communicate()
            if under_way:
                assert process.stdout is not None
                head = process.stdout.readline()
                assert head.startswith("stressdeck "), head
                head += process.stdout.readline()
                assert "users" in head, head
            time.sleep(after)
            process.send_signal(signum)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return process.returncode, head + out, err


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGHUP, 129), (signal.SIGTERM, 130), (signal.SIGINT, 130)],
    ids=["SIGHUP", "SIGTERM", "SIGINT"],
)
@pytest.mark.slow
def test_a_signal_mid_run_keeps_the_partial_session(tmp_path: Path, signum: int, code: int) -> None:
    returncode, out, err = _signalled_run(tmp_path, signum, 0.5, "--processes", "2", under_way=True)
    assert returncode == code, (out, err)
    assert "Traceback" not in err and "leaked" not in err, err
    saved = [line for line in out.splitlines() if line.startswith("partial session saved: ")]
    assert len(saved) == 1, (out, err)
    session = load_session(tmp_path / saved[0].removeprefix("partial session saved: "))
    assert session.results.stop_reason.startswith("interrupted")


# Every signal at every moment is the slow run's (21 runs of 2 worker processes each); the
# everyday run takes each signal at one moment: importing, starting the workers, running.
EVERYDAY_START_UP = {(signal.SIGINT, 0.05), (signal.SIGTERM, 0.3), (signal.SIGHUP, 0.8)}
START_UP_CASES = [
    pytest.param(
        signum,
        after,
        marks=() if (signum, after) in EVERYDAY_START_UP else pytest.mark.slow,
        id=f"{signum.name}-{after}",
    )
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for after in (0.0, 0.05, 0.15, 0.3, 0.5, 0.8, 1.2)
]


@pytest.mark.parametrize(("signum", "after"), START_UP_CASES)
def test_a_signal_at_start_up_ends_cleanly(tmp_path: Path, signum: int, after: float) -> None:
    """At any moment: importing, loading the profile, starting the workers, running."""
    returncode, out, err = _signalled_run(tmp_path, signum, after, "--processes", "2")
    assert returncode == (129 if signum == signal.SIGHUP else 130), (out[-1500:], err)
    assert "Traceback" not in err and "leaked" not in err, err
    # Once the run has sent a request, its partial session is kept; before, none is.
    if out.startswith("stressdeck "):
        sent = "partial session saved: " in out
        assert sent != ("stopped before the first request" in out), out
        assert len(list((tmp_path / "sessions").glob("*.toml"))) == (1 if sent else 0)


# -- 8. CR/LF in headers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "document_change"),
    [
        ("endpoints[0].headers.X", {"headers": {"X": "b\r\nInjected: 1"}}),
        ("endpoints[0].headers.X\\r\\nY", {"headers": {"X\r\nY": "b"}}),
        ("endpoints[0].headers.X: Y", {"headers": {"X: Y": "b"}}),
    ],
)
def test_header_injection_is_refused_at_load(where: str, document_change: dict) -> None:
    document = _document("http://127.0.0.1:1")
    document["endpoints"][0].update(document_change)
    with pytest.raises(InputError) as caught:
        parse_profile(document, "p.json")
    assert caught.value.field == where.replace("\\r\\n", "\r\n")


def test_header_injection_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    document = _document("http://127.0.0.1:1", defaults={"headers": {"X-Token": "${TOKEN}"}})
    profile = parse_profile(document, "p.json")
    with pytest.raises(InputError, match=r"endpoints\[0\]\.headers\.X-Token: .*CR or LF"):
        build_plan(profile, env={"TOKEN": "a\r\nInjected: 1"})


def test_curl_header_injection_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="CR or LF"):
        import_command(
            "curl",
            "curl -H $'X: b\\r\\nInjected: 1' http://127.0.0.1:1/",
            out=str(tmp_path / "c.toml"),
        )
    assert not (tmp_path / "c.toml").exists()


# -- 9. where the load goes -------------------------------------------------------------------


def test_a_non_loopback_run_names_its_hosts_first(tmp_path: Path) -> None:
    """``.invalid`` never resolves (RFC 6761): nothing is sent anywhere."""
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps(_document("http://nowhere.invalid:9")))
    done = subprocess.run(
        [*STRESSDECK, "run", str(profile), "--requests", "1", "--processes", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    first = done.stderr.splitlines()[0]
    assert first == "warning: sending load to a host that is not this machine: nowhere.invalid"
    assert done.stdout.startswith("stressdeck "), done.stdout  # said before the run starts


def test_loopback_runs_print_no_host_line(tmp_path: Path) -> None:
    from stressdeck.engine.plan import remote_hosts

    for url in (
        "http://127.0.0.1:1",
        "http://[::1]:1",
        "http://api.localhost:1",
        "http://localhost",
    ):
        plan = build_plan(parse_profile(_document(url), "p.json"))
        assert remote_hosts(plan) == [], url
    plan = build_plan(
        parse_profile(_document("http://127.0.0.1:1"), "p.json"),
        Overrides(metrics_url="http://metrics.example:9/m"),
    )
    assert remote_hosts(plan) == ["metrics.example"]


def test_a_templated_host_is_refused() -> None:
    document = _document("http://127.0.0.1:1")
    document["endpoints"] = [
        {"name": "a", "url": "http://{host}/x", "extract": {"host": "$.host"}},
    ]
    with pytest.raises(InputError, match=r"endpoints\[0\]\.url: .*host"):
        build_plan(parse_profile(document, "p.json"))


# -- 10. the small ones --------------------------------------------------------------------------


def test_a_toml_file_with_a_bom_loads(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_bytes(
        b'\xef\xbb\xbfname = "p"\n[[endpoints]]\nname = "a"\nurl = "http://127.0.0.1:1/"\n'
    )
    assert load_profile(path).name == "p"


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_a_huge_integer_is_an_error_about_the_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"p{suffix}"
    digits = "9" * 5000
    path.write_text(
        f'{{"name": "p", "load": {{"users": {digits}}}}}'
        if suffix == ".json"
        else f'name = "p"\n[load]\nusers = {digits}\n'
    )
    with pytest.raises(InputError) as caught:
        load_profile(path)
    line = caught.value.line()
    assert "set_int_max_str_digits" not in line and "5000 digits" in line, line


def test_a_session_override_past_the_cap_names_the_override(tmp_path: Path) -> None:
    with ServerThread(counting_app()) as server:
        profile = tmp_path / "p.json"
        profile.write_text(json.dumps(_document(server.url)))
        saved = tmp_path / "s.json"
        assert main(["run", str(profile), "--quiet", "--save", str(saved)]) == 0
    document = json.loads(saved.read_text())
    document["plan"]["overrides"]["users"] = 10**9
    saved.write_text(json.dumps(document))
    from stressdeck.sessions.replay import replay_inputs

    with pytest.raises(InputError) as caught:
        replay_inputs(load_session(saved), str(saved))
    assert caught.value.field == "plan.overrides.users", caught.value.line()


def test_a_nan_gauge_is_no_value_not_zero() -> None:
    series = _Series(parse_series("app_open"), 10)
    series.record(0.0, parse_exposition("# TYPE app_open gauge\napp_open NaN\n"))
    (point,) = series.points
    assert point.value is None or not math.isfinite(point.value)
    assert point.value != 0 and "NaN" in (point.error or "")


@pytest.mark.parametrize(
    ("option", "key", "value"),
    [
        ("--resolve example.com:80:127.0.0.1", "connect_to", ["example.com:80:127.0.0.1:80"]),
        ("--unix-socket /tmp/s", "unix_socket", "/tmp/s"),
    ],
)
def test_curl_options_that_change_the_destination_are_kept(
    tmp_path: Path, option: str, key: str, value: object
) -> None:
    # Where the command connected is where the run connects (routes), not a warning.
    path, _ = import_command(
        "curl", f"curl {option} http://127.0.0.1:1/", out=str(tmp_path / "c.toml")
    )
    assert tomllib.loads(path.read_text())[key] == value


def test_an_abstract_socket_is_named_and_left_out(tmp_path: Path) -> None:
    path, warnings = import_command(
        "curl", "curl --abstract-unix-socket app http://127.0.0.1:1/", out=str(tmp_path / "c.toml")
    )
    assert any("--abstract-unix-socket" in warning for warning in warnings), warnings
    assert "unix_socket" not in tomllib.loads(path.read_text())


def test_curl_data_from_a_file_says_so(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"a": 1}')
    _, warnings = import_command(
        "curl", f"curl -d @{body} http://127.0.0.1:1/", out=str(tmp_path / "c.toml")
    )
    assert any(str(body) in warning and "copied" in warning for warning in warnings), warnings
