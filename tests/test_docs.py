"""The docs site's generated pages agree with the code, and the README stays a front page."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def reference_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "docs_reference", ROOT / "docs/hooks/reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_profile_reference_describes_exactly_the_keys_the_parser_accepts() -> None:
    hook = reference_hook()
    assert hook.drift() == []
    rendered = hook.render_profile_reference()
    for path in hook.accepted_paths():
        assert f"| `{path}` |" in rendered


def test_the_profile_reference_fails_on_a_key_it_does_not_describe() -> None:
    hook = reference_hook()
    del hook.PROFILE_FIELDS["load.connections"]
    assert hook.drift() == [
        "profile key `load.connections` has no meaning in docs/hooks/reference.py"
    ]


def test_the_results_reference_lists_every_top_level_field_of_the_schema() -> None:
    import json

    schema = json.loads((ROOT / "results.schema.json").read_text(encoding="utf-8"))
    rendered = reference_hook().render_results_reference()
    for key in schema["properties"]:
        assert f"| `{key}` |" in rendered


def test_the_readme_is_a_front_page_holding_the_test_command_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    # Each test step .ci/run runs appears in the README's one test line, in the same order.
    steps = [
        line.strip() for line in ci.splitlines() if line.startswith(".venv/bin/python -m pytest")
    ]
    steps.append("bash .ci/ray-tests")
    line = next(line for line in readme.splitlines() if "pip install -e '.[test" in line)
    positions = [line.find(step) for step in steps]
    assert -1 not in positions, (steps, line)
    assert positions == sorted(positions)


def test_every_page_in_docs_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s*([\w-]+\.md)\s*$", nav, re.MULTILINE))
    pages = {path.name for path in (ROOT / "docs").glob("*.md")}
    assert pages == listed


def test_architecture_lists_the_package_imports_the_code_has() -> None:
    from test_architecture import LAYERS, graph

    edges: dict[str, set[str]] = {layer: set() for layer in LAYERS}
    for module, imported in graph().items():
        parts = module.split(".")
        if len(parts) < 2 or parts[1] not in LAYERS:
            continue
        packages = {m.split(".")[1] for m in imported if m.count(".") >= 1}
        edges[parts[1]] |= packages & set(LAYERS) - {parts[1]}
    text = " ".join((ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8").split())
    listed = text.split("the edges the code has today are: ", 1)[1].split(". ", 1)[0]
    written = {
        package.strip("` "): {name.strip("` ") for name in imports.split(",")}
        for package, imports in (edge.split("→") for edge in listed.split(";"))
    }
    assert written == {layer: found for layer, found in edges.items() if found}
