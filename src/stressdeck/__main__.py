"""`python -m stressdeck`: stop signals are handled from the first line, imports included."""

# Guarded: worker processes are spawned, and spawn imports the main module again.
if __name__ == "__main__":
    from stressdeck.core.signals import Stopped, check_stop, stop_signals

    with stop_signals():
        try:
            from stressdeck.cli import main

            check_stop()  # came while importing
            code = main()
        except Stopped as stop:
            code = stop.code
    raise SystemExit(code)
