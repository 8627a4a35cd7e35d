"""snabbpy: Snabb-style packet processing in Python."""

__version__ = "0.1.0"
