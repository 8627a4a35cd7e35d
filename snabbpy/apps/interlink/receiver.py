"""Receiver: the receiving end of an interlink."""

from __future__ import annotations

from snabbpy.apps.interlink.transmitter import open_ring
from snabbpy.core import interlink
from snabbpy.core.app import App, Param


class Receiver(App):
    """Moves the records of the interlink ring in file ``path`` into fresh
    packets on its output, as many as the output has room for (the rest
    wait in the ring). It is producing while records wait. An idle engine
    sleeps until the sender puts records in (``wake_on``)."""

    inputs, outputs = (), ("output",)
    links_only = True
    config = {"path": Param(str, doc="the ring file (made by the supervisor)")}

    def __init__(self, conf: dict) -> None:
        self.ring = open_ring(conf["path"])
        self._output = None

    def link(self) -> None:
        self._output = self.output.get("output")

    def pull(self) -> None:
        if self._output is not None:
            self.ring.receive(self._output)

    def wake_on(self) -> list:
        """What an idle engine waits for: records in the ring."""
        return [(self.ring, interlink.RECORDS, self._output)]

    def producing(self) -> bool:
        """True while records wait in the ring."""
        return not self.ring.empty()

    def stop(self) -> None:
        self.ring.close()
