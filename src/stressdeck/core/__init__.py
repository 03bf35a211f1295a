"""Leaf utilities every layer may use: errors, files, text, units, hosts, redaction, exit codes."""
