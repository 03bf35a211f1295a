"""Sessions and results that cannot be written: refused before the run when that can be known,
otherwise one line naming the file after it, the summary still printed, nothing half-written."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import ServerThread, counting_app

from stressdeck.cli import main
from stressdeck.core.files import WriteError, unwritable_reason, write_atomic
from stressdeck.sessions.session import load_session

STRESSDECK = [sys.executable, "-m", "stressdeck"]


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread(counting_app()) as running:
        yield running


@pytest.fixture
def profile(tmp_path: Path, server: ServerThread) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(
        f'name = "p"\nbase_url = "{server.url}"\n[[endpoints]]\nname = "ok"\npath = "/ok"\n'
    )
    return path


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def _one_error_line(err: str, start: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(start)]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- refused before the run -----------------------------------------------------------------


@pytest.mark.parametrize("option", ["--save", "--json"])
def test_a_parent_that_is_a_file_is_refused_before_the_run(
    tmp_path: Path,
    profile: Path,
    server: ServerThread,
    capsys: pytest.CaptureFixture[str],
    option: str,
) -> None:
    """Fails for root too, unlike a chmod."""
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    target = blocker / "sub" / ("x.toml" if option == "--save" else "r.json")
    assert main(["run", str(profile), "--duration", "1s", option, str(target)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {option}: {target}: cannot write ({blocker} is not a directory)\n"
    assert server.count == 0 and blocker.read_text() == ""


def test_a_read_only_directory_is_refused_before_the_run(
    tmp_path: Path,
    profile: Path,
    server: ServerThread,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_only = tmp_path / "ro_dir"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        if os.access(read_only, os.W_OK):
            # Root may write a 0o555 directory, and CI often runs as root: there, the access
            # check answers as it would for anyone else, so the refusal path still runs.
            real_access = os.access
            monkeypatch.setattr(
                "stressdeck.core.files.os.access",
                lambda path, mode: False if Path(path) == read_only else real_access(path, mode),
            )
        assert (
            main(["run", str(profile), "--duration", "1s", "--save", str(read_only / "x.toml")])
            == 2
        )
        assert capsys.readouterr().err == (
            f"error: --save: {read_only / 'x.toml'}: cannot write ({read_only} is not writable)\n"
        )
        assert server.count == 0 and list(read_only.iterdir()) == []
    finally:
        read_only.chmod(0o755)


def test_replay_refuses_an_unwritable_save_before_replaying(
    tmp_path: Path, profile: Path, server: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "s.toml"
    assert (
        main(
            [
                "run",
                str(profile),
                "--duration",
                "300ms",
                "--quiet",
                "--processes",
                "1",
                "--save",
                str(saved),
            ]
        )
        == 0
    )
    sent = server.count
    (tmp_path / "blocker").write_text("")
    target = tmp_path / "blocker" / "replay.toml"
    capsys.readouterr()
    assert main(["replay", str(saved), "--save", str(target)]) == 2
    assert (
        capsys.readouterr().err
        == f"error: --save: {target}: cannot write ({tmp_path / 'blocker'} is not a directory)\n"
    )
    assert server.count == sent


# -- failing after the run ------------------------------------------------------------------


def _start(argv: list[str], cwd: Path, **popen: object) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [*STRESSDECK, *argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )  # type: ignore[call-overload]
    assert process.stdout is not None
    assert process.stdout.readline().startswith("stressdeck ")
    assert "users" in process.stdout.readline()  # one progress line: the run is under way
    return process


def _finish(process: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


def test_a_save_directory_gone_mid_run_falls_back_to_the_autosave(
    tmp_path: Path, profile: Path
) -> None:
    (tmp_path / "out").mkdir()
    process = _start(
        [
            "run",
            str(profile),
            "--duration",
            "1500ms",
            "--users",
            "2",
            "--processes",
            "1",
            "--save",
            "out/x.toml",
            "--json",
            "r.json",
        ],
        tmp_path,
    )
    (tmp_path / "out").rmdir()
    (tmp_path / "out").write_text("now a file")  # even root cannot create out/x.toml now
    code, out, err = _finish(process)
    assert code == 1, err  # the session is not where it was asked for
    line = _one_error_line(err, "error: ")
    assert line == f"error: out/x.toml: cannot write ({tmp_path / 'out'} is not a directory)"
    assert "TOTAL" in out and "duration reached" in out  # the summary was printed all the same
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["summary"]["total"]["requests"] > 0
    kept = [line for line in out.splitlines() if line.startswith("session saved instead: ")]
    assert len(kept) == 1, out
    session = load_session(tmp_path / kept[0].removeprefix("session saved instead: "))
    assert session.results.total.requests == results["summary"]["total"]["requests"]
    assert _temp_files(tmp_path) == []


def test_an_unwritable_autosave_directory_on_ctrl_c(tmp_path: Path, profile: Path) -> None:
    (tmp_path / "sessions").write_text("not a directory")
    process = _start(
        [
            "run",
            str(profile),
            "--duration",
            "30s",
            "--users",
            "2",
            "--processes",
            "1",
            "--json",
            "r.json",
        ],
        tmp_path,
    )
    process.send_signal(signal.SIGINT)
    code, out, err = _finish(process)
    assert code == 130, err  # interrupted stays the exit code: the error line says what was lost
    line = _one_error_line(err, "error: ")
    assert line.startswith("error: sessions/autosave-") and line.endswith(
        f".toml: cannot write ({tmp_path / 'sessions'} is not a directory)"
    )
    assert "TOTAL" in out and "interrupted" in out and "saved" not in out
    assert json.loads((tmp_path / "r.json").read_text())["stop_reason"] == "interrupted (SIGINT)"
    assert (tmp_path / "sessions").read_text() == "not a directory"
    assert _temp_files(tmp_path) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_device_is_one_line_and_the_rest_is_kept(tmp_path: Path, profile: Path) -> None:
    (tmp_path / "r.json").symlink_to("/dev/full")
    (tmp_path / "s.toml").symlink_to("/dev/full")
    process = _start(
        [
            "run",
            str(profile),
            "--duration",
            "1s",
            "--users",
            "2",
            "--processes",
            "1",
            "--json",
            "r.json",
            "--save",
            "s.toml",
            "--force",
        ],
        tmp_path,
    )
    code, out, err = _finish(process)
    assert code == 1
    assert err.splitlines() == [
        "error: r.json: cannot write (No space left on device)",
        "error: s.toml: cannot write (No space left on device)",
    ]
    assert "TOTAL" in out
    kept = [line for line in out.splitlines() if line.startswith("session saved instead: ")]
    assert (
        len(kept) == 1
        and load_session(tmp_path / kept[0].split(": ", 1)[1]).results.total.requests > 0
    )
    # The links are still links to the device: nothing was renamed over them.
    assert (
        os.readlink(tmp_path / "r.json") == "/dev/full"
        and os.readlink(tmp_path / "s.toml") == "/dev/full"
    )


def _small_files_only() -> None:
    # A disk that fills up mid-write, for root too: any write past 2 KiB fails with EFBIG
    # (Python ignores SIGXFSZ, so the write returns an error instead of killing us).
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))


def test_a_disk_full_mid_write_leaves_no_temporary_file(tmp_path: Path, profile: Path) -> None:
    process = _start(
        [
            "run",
            str(profile),
            "--duration",
            "1s",
            "--users",
            "2",
            "--processes",
            "1",
            "--save",
            "s.toml",
        ],
        tmp_path,
        preexec_fn=_small_files_only,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    code, out, err = _finish(process)
    # Both streams in the message: a CI run once had code 1 and no summary, unexplained.
    assert code == 1, (out, err)
    assert "TOTAL" in out and "saved" not in out, (out, err)
    lines = err.splitlines()
    assert lines[0] == "error: s.toml: cannot write (File too large)" and len(lines) == 2, err
    assert lines[1].startswith("error: sessions/autosave-") and lines[1].endswith(
        "cannot write (File too large)"
    )
    assert not (tmp_path / "s.toml").exists()
    assert _temp_files(tmp_path) == []


# -- write_atomic itself ---------------------------------------------------------------------


def test_write_atomic_refuses_a_symlink_and_writes_devices_in_place(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere" / "results.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "results.json"
    link.symlink_to(real)
    with pytest.raises(WriteError, match="is a symbolic link"):  # issue 16: never followed
        write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "old"
    assert sorted(p.name for p in real.parent.iterdir()) == ["results.json"]
    write_atomic("/dev/null", "discarded")  # renaming over it would need /dev writable, or break it
    assert Path("/dev/null").is_char_device()
    with pytest.raises(WriteError, match="is a directory"):
        write_atomic(tmp_path, "x")


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("new/deeper/x.toml", None),
        (".", "is a directory"),
        ("file/x.toml", "{root}/file is not a directory"),
        ("file/a/b/x.toml", "{root}/file is not a directory"),
        ("file", None),
    ],
)
def test_unwritable_reason(tmp_path: Path, relative: str, expected: str | None) -> None:
    (tmp_path / "file").write_text("")
    wanted = None if expected is None else expected.format(root=tmp_path)
    assert unwritable_reason(tmp_path / relative) == wanted


def test_written_files_get_ordinary_permissions(tmp_path: Path) -> None:
    """Not mkstemp's 0600: a report is shared like any file; a replaced file keeps its mode."""
    import os
    import stat

    from stressdeck.core.files import write_atomic

    mask = os.umask(0o022)
    try:
        fresh = write_atomic(tmp_path / "report.html", "<html></html>")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
        fresh.chmod(0o600)
        write_atomic(fresh, "<html>again</html>")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    finally:
        os.umask(mask)
