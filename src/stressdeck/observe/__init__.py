"""The system under test seen from outside: its Prometheus metrics, host and process usage, and the built-in demo target."""
