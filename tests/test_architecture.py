"""The package layering of ARCHITECTURE.md, checked from the source: no import cycles between
stressdeck's modules, each package imports only the layers below it, and the engine never
imports a UI library."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "stressdeck"

# Each package and the packages it may import (besides itself), lowest layer first.
LAYERS = ("core", "observe", "profiles", "engine", "sessions", "api", "ui", "cli")
ALLOWED = {layer: set(LAYERS[: index + 1]) for index, layer in enumerate(LAYERS)}
UI_LIBRARIES = ("textual", "textual_plotext", "rich", "plotext")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, at any depth (a function-local import counts too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            # `from stressdeck.x import y` may name a module y as well as an attribute
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges[name] = {m for m in imports_of(path) if m in modules and m != name}
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_no_import_cycle_between_stressdeck_modules() -> None:
    edges = graph()
    # A package's __init__ importing its own submodules is how packages re-export; the
    # submodules importing the package back would be the cycle, and is caught.
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("layer", LAYERS)
def test_each_package_imports_only_the_layers_below_it(layer: str) -> None:
    wrong = []
    for path in (PACKAGE / layer).rglob("*.py"):
        for imported in imports_of(path):
            other = layer_of(imported)
            if other is not None and other not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(SRC)} imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_the_engine_never_imports_a_ui_library() -> None:
    wrong = [
        f"{path.relative_to(SRC)} imports {imported}"
        for path in (PACKAGE / "engine").rglob("*.py")
        for imported in imports_of(path)
        if imported.split(".")[0] in UI_LIBRARIES
    ]
    assert not wrong, "\n".join(wrong)


def test_every_module_belongs_to_a_layer() -> None:
    loose = sorted(
        module_name(p) for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")
    )
    assert loose == [], f"modules outside the layered packages: {loose}"
