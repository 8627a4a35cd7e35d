"""Tee: copies every input packet to every output."""

from __future__ import annotations

from snabbpy.core.app import ANY, App
from snabbpy.core.native import ffi, lib


class Tee(App):
    """Each packet goes to all outputs (clones to all but the last). Takes
    only what every output has room for: nothing is dropped here."""

    inputs, outputs = ANY, ANY

    def __init__(self, conf: dict) -> None:
        self._inputs: list = []
        self._outputs = ffi.new("struct link *[]", 1)
        self._noutputs = 0

    def link(self) -> None:
        self._inputs = [i.c for i in self.input.values()]
        outs = [o.c for o in self.output.values()]
        self._outputs = ffi.new("struct link *[]", outs or 1)
        self._noutputs = len(outs)

    def push(self) -> None:
        if self._noutputs:
            for i in self._inputs:
                lib.link_tee(i, self._outputs, self._noutputs)
        else:
            for i in self._inputs:
                lib.link_free_all(i)
