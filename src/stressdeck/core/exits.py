"""Exit codes shared by every command and the console."""

EXIT_OK = 0
EXIT_FAILED = 1  # could not run, or the run crashed
EXIT_USAGE = 2  # bad input or usage
EXIT_THRESHOLDS = 3  # a threshold failed (or compare found a regression)
# compare: the runs cannot tell (too few requests or seconds, a saturated generator);
# neither a pass nor a regression, so a CI job can tell it apart and rerun or warn
EXIT_INCONCLUSIVE = 4
# Requests went out and not one was answered (connection refused everywhere, every request
# timed out or failed TLS): not a passing run, thresholds or not. Failed thresholds keep 3.
EXIT_NOTHING_ANSWERED = 5
EXIT_INTERRUPTED = 130  # Ctrl+C or SIGTERM: stopped cleanly, partial results kept
EXIT_HANGUP = 129  # SIGHUP (the terminal or SSH connection went away): the same, 128 + 1
