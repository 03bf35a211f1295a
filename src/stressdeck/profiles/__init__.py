"""What to send: the profile format, request chaining, thresholds, load presets, and importers."""
