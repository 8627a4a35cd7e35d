"""Linux TAP devices as ports of a graph."""

from snabbpy.apps.tap.tap import Tap

__all__ = ["Tap"]
