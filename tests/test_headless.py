"""A promise of ARCHITECTURE.md, checked as a user meets it: headless commands never load a
UI library.

Each case is a fresh interpreter that imports a headless entry point, and for ``run`` and the
API also runs a short load against the test's own server on 127.0.0.1, then lists the UI
libraries in ``sys.modules``. (tests/test_architecture.py reads the imports from the source;
this catches what it cannot see: an import made by name at run time, or through a
dependency.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import ServerThread

UI_LIBRARIES = ("textual", "textual_plotext", "rich", "plotext")

LOADED = """
import json, sys
ui = sorted(m for m in sys.modules if m.split(".")[0] in {libraries})
print(json.dumps(ui))
"""

CASES = {
    "cli.main (imported)": "import stressdeck.cli.main",
    "stressdeck run URL": """
        from stressdeck.cli.main import main
        code = main(["run", URL + "/ok", "--requests", "20", "--users", "2",
                     "--processes", "1", "--quiet"])
        assert code == 0, code
    """,
    "api.runs": """
        import stressdeck
        from stressdeck.api import runs
        results = runs.run({"name": "p", "base_url": URL,
                            "endpoints": [{"name": "ok", "path": "/ok"}]}, requests=20, users=2)
        assert results.total.requests == 20, results.total.requests
    """,
    "engine.runner": "import stressdeck.engine.runner",
    "sessions": "import stressdeck.sessions.session, stressdeck.sessions.exports",
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_headless_entry_point_loads_no_ui_library(case: str, target: ServerThread) -> None:
    script = (
        f"URL = {target.url!r}\n"
        + textwrap.dedent(CASES[case])
        + LOADED.format(libraries=set(UI_LIBRARIES))
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_check_sees_a_ui_library_when_one_is_loaded() -> None:
    script = "import stressdeck.ui.format\n" + LOADED.format(libraries=set(UI_LIBRARIES))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "rich" in json.loads(done.stdout.strip().splitlines()[-1])
