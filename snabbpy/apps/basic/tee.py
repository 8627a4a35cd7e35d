"""Tee: copies every input packet to every output."""

from __future__ import annotations

from snabbpy.core.app import ANY, App
from snabbpy.core.link import link_array
from snabbpy.core.native import lib


class Tee(App):
    """Each packet goes to all outputs (clones to all but the last). Takes
    only what every output has room for: nothing is dropped here."""

    inputs, outputs = ANY, ANY
    links_only = True  # moves what its links give it (core/app.py)

    def __init__(self, conf: dict) -> None:
        self._inputs: list = []
        self._outputs, self._noutputs = link_array(())

    def link(self) -> None:
        self._inputs = [i.c for i in self.input.values()]
        self._outputs, self._noutputs = link_array(self.output.values())

    def push(self) -> None:
        if self._noutputs:
            for i in self._inputs:
                lib.link_tee(i, self._outputs, self._noutputs)
        else:
            for i in self._inputs:
                lib.link_free_all(i)
