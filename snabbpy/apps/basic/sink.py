"""Sink: frees every packet it receives."""

from __future__ import annotations

from snabbpy.core.app import ANY, App
from snabbpy.core.native import lib


class Sink(App):
    """Receives and frees every packet on every input (the link counters
    say how many)."""

    inputs, outputs = ANY, ()
    links_only = True  # moves what its links give it (core/app.py)

    def __init__(self, conf: dict) -> None:
        self._inputs: list = []

    def link(self) -> None:
        self._inputs = [i.c for i in self.input.values()]

    def push(self) -> None:
        for i in self._inputs:
            lib.link_free_all(i)
