# What a type checker sees of ``import stressdeck``: the names __init__.py loads lazily on
# first use, with their real types (tests/test_typing.py keeps this list and __all__ equal).
from stressdeck.api.results import RunResults as RunResults
from stressdeck.api.results import ThresholdsFailed as ThresholdsFailed
from stressdeck.api.runs import run as run
from stressdeck.api.runs import run_async as run_async
from stressdeck.api.runs import start as start
from stressdeck.api.runs import start_async as start_async
from stressdeck.core.errors import InputError as InputError
from stressdeck.core.files import WriteError as WriteError
from stressdeck.engine.results import Results as Results

__version__: str
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
