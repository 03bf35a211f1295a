"""stressdeck: a terminal console for load and stress testing HTTP backends."""

from typing import Any


def _version() -> str:
    """One version, in one place: pyproject.toml's, as the installed package's metadata
    holds it. Read on first use: importlib.metadata takes 60-140 ms to import (email,
    zipfile ...), which the console's first screen and each worker process need not pay."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stressdeck")
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "0+unknown"


# The Python API (``stressdeck.run`` ...), imported on first use: ``import stressdeck`` stays
# cheap, which matters to the pytest plugin that every pytest run in this environment loads.
# The API's own names are resolved by ``stressdeck.api`` (which loads them lazily too).
_API = {
    **dict.fromkeys(
        ("run", "run_async", "start", "start_async", "RunResults", "ThresholdsFailed"),
        "stressdeck.api",
    ),
    "Results": "stressdeck.engine.results",
    "InputError": "stressdeck.core.errors",
    "WriteError": "stressdeck.core.files",
}
# Not imported here for type checkers either (the sessions import ``__version__`` from this
# module, and the API imports the sessions): __init__.pyi gives them these names' types.
__all__ = [
    "InputError",
    "Results",
    "RunResults",
    "ThresholdsFailed",
    "WriteError",
    "__version__",
    "run",
    "run_async",
    "start",
    "start_async",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        found = _version()
        globals()["__version__"] = found  # read once
        return found
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'stressdeck' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
