"""What was measured, kept: the session format, replay, compare, summaries and exported reports."""
