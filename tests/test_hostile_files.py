"""Hostile environment, round two: what is on disk is not always what it seems.

Symlinks at the paths we write, devices and pipes where files should be, files far too big,
YAML alias bombs, histogram bombs and impossible counts in session files. Each is refused in
one line naming the file, in bounded time and memory, and nothing is written elsewhere.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import zlib
from ctypes import sizeof
from pathlib import Path

import pytest
import tomli_w
from conftest import ServerThread, counting_app
from hdrh.codec import ExternalHeader, PayloadHeader

from stressdeck.cli import main
from stressdeck.core.errors import InputError
from stressdeck.core.files import WriteError, write_atomic
from stressdeck.profiles.importers import import_command
from stressdeck.profiles.profile import load_profile
from stressdeck.sessions.autosave import autosave_path
from stressdeck.sessions.session import load_session

STRESSDECK = [sys.executable, "-m", "stressdeck"]


def _profile(path: Path, base_url: str, **extra: object) -> Path:
    document = {
        "name": "p",
        "base_url": base_url,
        "load": {"users": 2, "requests": 4},
        "endpoints": [{"name": "ok", "path": "/ok"}],
        **extra,
    }
    path.write_text(json.dumps(document))
    return path


# -- 1. writes never follow a symlink at the final path -----------------------------------------


def test_write_atomic_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "target.toml"
    outside.parent.mkdir()
    link = tmp_path / "x.toml"
    link.symlink_to(outside)
    for overwrite in (False, True):
        with pytest.raises(WriteError, match="symbolic link"):
            write_atomic(link, "data", overwrite=overwrite)
    assert not outside.exists() and link.is_symlink()


def test_write_atomic_refuses_a_symlink_to_a_file(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "out.json"
    link.symlink_to(victim)
    with pytest.raises(WriteError, match=r"out\.json: .*symbolic link"):
        write_atomic(link, "{}", overwrite=True)
    assert victim.read_text() == "precious"


def test_exclusive_write_never_replaces_what_appeared_meanwhile(tmp_path: Path) -> None:
    """overwrite=False is checked by the kernel (a hard link to the final name), not by a
    look first: a name that exists, or a dangling link planted there, is never replaced."""
    path = tmp_path / "s.toml"
    path.write_text("first")
    with pytest.raises(WriteError, match="already exists"):
        write_atomic(path, "second", overwrite=False)
    assert path.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["s.toml"]  # no temporary left behind


def test_autosave_skips_a_planted_dangling_link(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    now = time.time()
    for second in range(-1, 5):  # every name the next few seconds could pick
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now + second))
        (sessions / f"autosave-{stamp}.toml").symlink_to(outside / f"{stamp}.toml")
    path = autosave_path(str(sessions))
    assert not os.path.lexists(path)
    write_atomic(path, "x", overwrite=False)
    assert list(outside.iterdir()) == []


def test_run_save_onto_a_dangling_link_is_refused_before_sending(tmp_path: Path) -> None:
    outside = tmp_path / "outside.toml"
    (tmp_path / "sessions").mkdir()
    link = tmp_path / "sessions" / "x.toml"
    link.symlink_to(outside)
    with ServerThread(counting_app()) as server:
        profile = _profile(tmp_path / "p.json", server.url)
        for force in ([], ["--force"]):
            assert main(["run", str(profile), "--quiet", "--save", str(link), *force]) == 2
        assert server.count == 0
    assert not outside.exists()


def test_json_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "link.json"
    link.symlink_to(victim)
    existing = tmp_path / "out.json"
    existing.write_text("old")
    with ServerThread(counting_app()) as server:
        profile = _profile(tmp_path / "p.json", server.url)
        assert main(["run", str(profile), "--quiet", "--json", str(existing)]) == 2
        assert "--json" in capsys.readouterr().err and existing.read_text() == "old"
        assert main(["run", str(profile), "--quiet", "--json", str(link), "--force"]) == 2
        assert "symbolic link" in capsys.readouterr().err
        assert server.count == 0
        assert main(["run", str(profile), "--quiet", "--json", str(existing), "--force"]) == 0
    assert json.loads(existing.read_text())["summary"]["total"]["requests"] == 4
    assert victim.read_text() == "precious"


# -- 2. only regular files, with a size cap per kind ---------------------------------------------


def _readers(tmp_path: Path) -> dict[str, object]:
    def data_feed(path: Path) -> None:
        link = tmp_path / "rows.csv"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(path)
        profile = tmp_path / "feed.json"
        profile.write_text(
            json.dumps(
                {
                    "name": "x",
                    "data": "rows.csv",
                    "endpoints": [{"name": "a", "url": "http://127.0.0.1:1/{row.id}"}],
                }
            )
        )
        load_profile(profile)

    def named(suffix: str, read: object) -> object:
        def call(path: Path) -> None:
            link = tmp_path / f"in{suffix}"
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(path)
            read(link)  # type: ignore[operator]

        return call

    return {
        "profile": named(".toml", load_profile),
        "session": named(".json", load_session),
        "har": named(".har", lambda p: import_command("har", str(p), out=str(tmp_path / "h.toml"))),
        "openapi": named(
            ".yaml", lambda p: import_command("openapi", str(p), out=str(tmp_path / "o.toml"))
        ),
        "data": data_feed,
    }


@pytest.mark.parametrize("kind", ["profile", "session", "har", "openapi", "data"])
def test_a_device_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    read = _readers(tmp_path)[kind]
    started = time.monotonic()
    with pytest.raises(InputError, match="not a regular file"):
        read(Path("/dev/zero"))  # type: ignore[operator]
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("kind", ["profile", "session", "har", "openapi", "data"])
def test_a_fifo_is_refused_not_waited_on(tmp_path: Path, kind: str) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    read = _readers(tmp_path)[kind]
    with pytest.raises(InputError, match=r"not a regular file \(a FIFO\)"):
        read(fifo)  # type: ignore[operator]


@pytest.mark.parametrize("kind", ["profile", "session", "har", "openapi", "data"])
def test_a_file_past_its_cap_is_refused_unread(tmp_path: Path, kind: str) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: 2 GiB that cost nothing on disk
    read = _readers(tmp_path)[kind]
    with pytest.raises(InputError, match="larger than"):
        read(big)  # type: ignore[operator]


def test_a_fifo_profile_from_the_cli_is_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "p.toml"
    os.mkfifo(fifo)
    done = subprocess.run(
        [*STRESSDECK, "run", str(fifo)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert done.stderr == f"error: {fifo}: not a regular file (a FIFO)\n"


@pytest.mark.slow
def test_a_data_feed_reads_rows_lazily(tmp_path: Path) -> None:
    """A big data file is checked once at load and then read row by row, never kept whole."""
    import tracemalloc

    from stressdeck.profiles.chain import DataFeed

    rows = tmp_path / "rows.csv"
    with open(rows, "w") as handle:
        handle.write("id,name\n")
        for number in range(200_000):
            handle.write(f"{number},user-{number:08d}-{'x' * 40}\n")
    assert rows.stat().st_size > 10_000_000
    profile = tmp_path / "p.json"
    profile.write_text(
        json.dumps(
            {
                "name": "x",
                "data": {"file": "rows.csv", "mode": "stop"},
                "endpoints": [{"name": "a", "url": "http://127.0.0.1:1/{row.id}"}],
            }
        )
    )
    load_profile(profile)  # once first: what it imports is not what it reads
    tracemalloc.start()
    try:
        spec = load_profile(profile).data
        assert spec is not None
        feed = DataFeed(spec, worker=1, workers=2)
        seen = [feed.next_row() for _ in range(3)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [row["id"] for row in seen if row] == ["1", "3", "5"]
    assert peak < 2_000_000, peak  # the file is 13 MB


def test_a_data_line_past_the_row_cap_is_refused(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text('{"id": "' + "x" * 2_000_000 + '"}\n')
    profile = tmp_path / "p.json"
    profile.write_text(
        json.dumps(
            {
                "name": "x",
                "data": "rows.jsonl",
                "endpoints": [{"name": "a", "url": "http://127.0.0.1:1/{row.id}"}],
            }
        )
    )
    with pytest.raises(InputError, match=r"data\.file: .*line 1 is longer than 1 MiB"):
        load_profile(profile)


# -- 3. YAML alias bombs ------------------------------------------------------------------------


def _alias_bomb() -> str:
    lines = [
        'openapi: "3.0.0"',
        "info: {title: bomb, version: '1'}",
        "servers: [{url: 'http://127.0.0.1:1'}]",
        'a0: &a0 ["lol"]',
    ]
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    lines.append("paths:")
    lines.append("  /x:")
    lines.append("    post:")
    lines.append("      responses: {'200': {description: ok}}")
    lines.append("      requestBody: {content: {application/json: {example: {data: *a9}}}}")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_in_bounded_time_and_memory(tmp_path: Path) -> None:
    spec = tmp_path / "bomb.yaml"
    spec.write_text(_alias_bomb())
    assert spec.stat().st_size < 1500
    # In a child with 1 GiB of address space and 30 s: before the fix it ran past both.
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from stressdeck.cli import main\n"
        f"sys.exit(main(['import', 'openapi', {str(spec)!r}, '--out', {str(tmp_path / 'o.toml')!r}]))\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 30
    assert done.returncode == 2, done.stderr[-500:]
    assert done.stderr.startswith(f"error: {spec}: YAML aliases expand to more than"), done.stderr
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "o.toml").exists()


# -- 4. histogram bombs and impossible counts in sessions ----------------------------------------


def _session_document(tmp_path: Path) -> dict:
    with ServerThread(counting_app()) as server:
        profile = _profile(tmp_path / "p.json", server.url)
        saved = tmp_path / "s.json"
        assert main(["run", str(profile), "--quiet", "--save", str(saved)]) == 0
    return json.loads(saved.read_text())


def _foreign_histogram(lowest: int, highest: int, figures: int, counts: bytes) -> str:
    header = PayloadHeader()
    header.cookie = 0x1C849303 | 0x10
    header.payload_len = len(counts)
    header.normalizing_index_offset = 0
    header.significant_figures = figures
    header.lowest_trackable_value = lowest
    header.highest_trackable_value = highest
    header.conversion_ratio_bits = 1.0
    compressed = zlib.compress(bytes(header) + counts)
    outer = ExternalHeader()
    outer.cookie = 0x1C849304 | 0x10
    outer.length = len(compressed)
    assert sizeof(outer) == 8
    return base64.b64encode(bytes(outer) + compressed).decode()


def test_a_histogram_bomb_is_refused_at_once(tmp_path: Path) -> None:
    document = _session_document(tmp_path)
    bomb = _foreign_histogram(1, 2**62, 5, b"\x02")  # one count at index 1
    assert len(base64.b64decode(bomb)) < 60
    document["histograms"] = {"total/latency": bomb, "ok/latency": bomb, "ok/service": bomb}
    path = tmp_path / "bomb.json"
    path.write_text(json.dumps(document))
    started = time.monotonic()
    with pytest.raises(
        InputError, match=r"histograms\.total/latency: expected a histogram in stressdeck's layout"
    ):
        load_session(path)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("ok/latency_ms", "unknown histogram"),
        ("nosuch/latency", "unknown histogram"),
    ],
)
def test_unknown_histogram_keys_are_refused(tmp_path: Path, key: str, message: str) -> None:
    document = _session_document(tmp_path)
    document["histograms"][key] = document["histograms"]["ok/latency"]
    path = tmp_path / "s2.json"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match=f"histograms.{key}: {message}"):
        load_session(path)


@pytest.mark.parametrize("value", [-1, 10**30])
def test_impossible_counts_are_refused(tmp_path: Path, value: int) -> None:
    document = _session_document(tmp_path)
    document["results"]["summary"]["total"]["requests"] = value
    path = tmp_path / "s3.toml"
    path.write_text(tomli_w.dumps(document) if value < 2**63 else json.dumps(document))
    path = path if value < 2**63 else path.rename(tmp_path / "s3.json")
    with pytest.raises(
        InputError, match=r"results\.summary\.total\.requests: expected a whole number from 0"
    ):
        load_session(path)


def test_a_histogram_with_more_samples_than_requests_is_refused(tmp_path: Path) -> None:
    document = _session_document(tmp_path)
    document["results"]["summary"]["endpoints"]["ok"]["requests"] = 1
    path = tmp_path / "s4.json"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match=r"histograms\.ok/latency: holds 4 samples"):
        load_session(path)
