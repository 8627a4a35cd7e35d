"""Repeater: records its input and plays it back forever."""

from __future__ import annotations

from snabbpy.core import packet
from snabbpy.core.app import App
from snabbpy.core.native import ffi, lib


class Repeater(App):
    """Keeps every packet that arrives on ``input`` and fills ``output`` with
    copies of them, in order, round and round."""

    inputs, outputs = ("input",), ("output",)
    links_only = True  # moves what its links give it (core/app.py)

    def __init__(self, conf: dict) -> None:
        self.packets: list = []
        self._array = ffi.new("struct packet *[]", 1)
        self._next = ffi.new("uint32_t *")

    def push(self) -> None:
        i, o = self.input.get("input"), self.output.get("output")
        if i is not None and not i.empty():
            while not i.empty():
                self.packets.append(i.receive())
            self._array = ffi.new("struct packet *[]", self.packets)
        if o is not None and self.packets:
            lib.basic_repeat(o.c, self._array, len(self.packets), self._next)

    def producing(self) -> bool:
        """Once it has recorded packets it plays them forever."""
        return bool(self.packets)

    def stop(self) -> None:
        for p in self.packets:
            packet.free(p)
        self.packets = []
