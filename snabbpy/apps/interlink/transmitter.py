"""Transmitter: the sending end of an interlink."""

from __future__ import annotations

from snabbpy.core import interlink
from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError


def open_ring(path: str) -> interlink.Ring:
    """The ring in file ``path``, or a ConfigError naming it."""
    try:
        return interlink.Ring(path)
    except interlink.InterlinkError as exc:
        raise ConfigError(str(exc)) from None


class Transmitter(App):
    """Copies every packet of its input into the interlink ring in file
    ``path`` and frees it; what the ring has no room for waits on the
    input link (which drops and counts when it is full, as links do). An
    idle engine whose packets wait here sleeps until the receiver has made
    room (``wake_on``)."""

    inputs, outputs = ("input",), ()
    links_only = True
    config = {"path": Param(str, doc="the ring file (made by the supervisor)")}

    def __init__(self, conf: dict) -> None:
        self.ring = open_ring(conf["path"])
        self._input = None

    def link(self) -> None:
        self._input = self.input.get("input")

    def push(self) -> None:
        if self._input is not None:
            self.ring.send(self._input)

    def wake_on(self) -> list:
        """What an idle engine waits for: room in the ring."""
        return [(self.ring, interlink.ROOM, self._input)]

    def stop(self) -> None:
        self.ring.close()
