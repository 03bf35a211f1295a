"""stressdeck: a terminal console for load and stress testing HTTP backends."""

__version__ = "0.1.0"
