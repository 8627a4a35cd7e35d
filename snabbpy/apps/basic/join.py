"""Join: merges every input onto one output."""

from __future__ import annotations

from snabbpy.core.app import ANY, App
from snabbpy.core.native import lib


class Join(App):
    """Moves packets from all inputs, in port order, to ``output``; what does
    not fit waits on its input (no drops)."""

    inputs, outputs = ANY, ("output",)
    links_only = True  # moves what its links give it (core/app.py)

    def __init__(self, conf: dict) -> None:
        self._inputs: list = []
        self._output = None

    def link(self) -> None:
        self._inputs = [i.c for i in self.input.values()]
        o = self.output.get("output")
        self._output = o.c if o else None

    def push(self) -> None:
        if self._output is None:
            return
        for i in self._inputs:
            lib.link_forward(i, self._output, -1)
