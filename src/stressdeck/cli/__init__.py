"""The command line. One module per command; `main` parses and dispatches."""

from stressdeck.cli.main import main

__all__ = ["main"]
