"""stressdeck: a terminal console for load and stress testing HTTP backends."""

from typing import Any

__version__ = "0.1.0"

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
# Not imported here for type checkers either: the sessions import ``__version__`` from this
# module, and the API imports the sessions.
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
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'stressdeck' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
