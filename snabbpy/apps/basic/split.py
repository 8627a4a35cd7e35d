"""Split: spreads one input over every output, round-robin."""

from __future__ import annotations

from snabbpy.core.app import ANY, App
from snabbpy.core.link import link_array
from snabbpy.core.native import ffi, lib


class Split(App):
    """Sends packets from every input to the outputs in turn, skipping full
    ones; when all are full the rest wait on the input."""

    inputs, outputs = ANY, ANY
    links_only = True  # moves what its links give it (core/app.py)

    def __init__(self, conf: dict) -> None:
        self._inputs: list = []
        self._outputs, self._noutputs = link_array(())
        self._next = ffi.new("uint32_t *")

    def link(self) -> None:
        self._inputs = [i.c for i in self.input.values()]
        self._outputs, self._noutputs = link_array(self.output.values())
        self._next[0] = 0

    def push(self) -> None:
        if self._noutputs:
            for i in self._inputs:
                lib.basic_split(i, self._outputs, self._noutputs, self._next)
