"""The package as a type checker sees it: py.typed ships, and the API's keyword overrides are
typed, so a misspelt or mistyped override is a type error before it is a run-time one."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import get_type_hints

import stressdeck
from stressdeck.api import options

SRC = Path(stressdeck.__file__).resolve().parent.parent

SNIPPET = """
    import stressdeck
    from stressdeck.engine.snapshot import Snapshot

    stressdeck.run("p.toml", users=10, duration="30s", model="open", processes="auto")
    stressdeck.run("p.toml", user=10)  # line 5
    stressdeck.run("p.toml", users="ten")  # line 6
    stressdeck.run("p.toml", model="half-open")  # line 7


    async def steer() -> None:
        async with await stressdeck.start_async("p.toml", rate=200.0) as live:
            async for snapshot in live.snapshots():
                seen: Snapshot = snapshot
                snapshot.no_such_figure  # line 14


    def test_sla(stressdeck) -> None:  # the fixture: untyped here, as in a user's test
        pass
"""


def test_the_overrides_type_lists_exactly_the_overrides_the_api_reads() -> None:
    assert set(get_type_hints(options.RunOverrides)) == set(options._OPTIONS)


def test_py_typed_ships_with_the_package() -> None:
    assert (SRC / "stressdeck" / "py.typed").is_file()


def test_the_stub_names_what_the_package_exports() -> None:
    stub = ast.parse((SRC / "stressdeck" / "__init__.pyi").read_text(encoding="utf-8"))
    imported = {
        alias.asname or alias.name
        for node in stub.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported | {"__version__"} == set(stressdeck.__all__)
    for name in imported:
        assert getattr(stressdeck, name) is not None


def test_mypy_refuses_a_misspelt_or_mistyped_override(tmp_path: Path) -> None:
    (tmp_path / "use.py").write_text(textwrap.dedent(SNIPPET).lstrip("\n"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "use.py",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--python-version",
            "3.11",
            "--follow-imports",
            "silent",
            "--ignore-missing-imports",
            "--no-error-summary",
        ],
        cwd=tmp_path,
        env={"MYPYPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard: mypy reads the whole package, 10-40 s
    )
    errors = {
        (int(line.split(":")[1]), line.rsplit("[", 1)[-1].rstrip("]"))
        for line in done.stdout.splitlines()
        if ": error:" in line
    }
    assert errors == {
        (5, "call-arg"),
        (6, "arg-type"),
        (7, "arg-type"),
        (14, "attr-defined"),
    }, done.stdout + done.stderr
