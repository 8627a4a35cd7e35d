"""Interlinks: the two ends of a ring between processes (workers).

The supervisor puts them in each worker's graph where a link joins apps
of two workers; a user rarely names them."""

from snabbpy.apps.interlink.receiver import Receiver
from snabbpy.apps.interlink.transmitter import Transmitter

__all__ = ["Receiver", "Transmitter"]
