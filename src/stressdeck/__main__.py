"""The command's entry: `python -m stressdeck`, and the `stressdeck` script (``entry``).

Stop signals are handled from the first line of ours, the imports included: the command
line pulls in aiohttp, the engine and, for the console, Textual (about a second on a busy
machine), and a Ctrl+C in that time must neither print a traceback nor be lost. Only the
interpreter's own start-up, before this module runs, is not ours to handle.
"""

from __future__ import annotations


def entry() -> int:
    """Run the command line with its arguments; the exit code."""
    import sys

    from stressdeck.core.signals import Stopped, check_stop, stop_signals

    with stop_signals():
        try:
            from stressdeck.cli.main import main

            check_stop()  # came while importing
            return main()
        except Stopped as stop:
            print(f"stopped by {stop} before the run started", file=sys.stderr)
            return stop.code


# Guarded: worker processes are spawned, and spawn imports the main module again.
if __name__ == "__main__":
    raise SystemExit(entry())
