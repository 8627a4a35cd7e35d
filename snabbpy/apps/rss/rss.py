"""RSS: spreads packets over N outputs by a symmetric flow hash."""

from __future__ import annotations

import re

from snabbpy.core.app import ANY, App, Param
from snabbpy.core.link import link_array
from snabbpy.core.native import ffi, lib

_DIGITS = re.compile(r"(\d+)")


def port_order(names) -> list[str]:
    """Output port names in the order RSS numbers them: natural sort, so
    ``out2`` comes before ``out10`` (digit runs compare as numbers)."""
    def key(name: str):
        return [(0, int(part), "") if part.isdigit() else (1, 0, part)
                for part in _DIGITS.split(name) if part]
    return sorted(names, key=key)


def flow_hash(frame: bytes) -> int:
    """The 32-bit symmetric flow hash of one Ethernet frame, as RSS takes
    it in C (both directions of a flow give the same value)."""
    data = bytes(frame)
    return int(lib.rss_hash(ffi.from_buffer("uint8_t[]", data), len(data)))


def output_index(hash_value: int, noutputs: int) -> int:
    """The output (0-based, in ``port_order``) a hash goes to among
    ``noutputs``: ``hash * noutputs >> 32``."""
    if noutputs < 1:
        raise ValueError("noutputs must be at least 1")
    return (hash_value & 0xFFFFFFFF) * noutputs >> 32


class RSS(App):
    """Moves every packet of every input to one of the outputs chosen by a
    symmetric flow hash: a flow always lands on the same output, and so do
    both of its directions. Outputs are taken in ``port_order`` (natural
    sort of their names). A full output drops and counts the packet
    (``txdrop`` of its link); with no output linked, packets are freed and
    counted in ``nooutput``. With ``lossless: true`` RSS moves the packets
    of an input in order while each one's output has room: the first bound
    for a full output (a busy worker) waits at the front of the input with
    those behind it, so packets are held back upstream instead of dropped,
    and an idle graph can sleep. The per-packet work runs in C over each
    whole link (``rss_spread``)."""

    inputs, outputs = ANY, ANY
    links_only = True  # moves what its links give it (core/app.py)
    link_types = (1,)  # parses Ethernet frames (core/linktypes.py)
    counters = ("nooutput",)
    config = {"lossless": Param(bool, default=False,
                                doc="hold packets back when an output is full, never drop")}

    def __init__(self, conf: dict) -> None:
        lossless = (conf or {}).get("lossless", False)  # made by hand: the default
        self._spread = lib.rss_spread_lossless if lossless else lib.rss_spread
        self._inputs: list = []
        self._outputs, self._noutputs = link_array(())
        self.order: list[str] = []
        self._nooutput = self.stats.pointer + self.stats.index["nooutput"]

    def link(self) -> None:
        """Caches the inputs and the outputs, in ``port_order``."""
        self._inputs = [i.c for i in self.input.values()]
        self.order = port_order(self.output)
        self._outputs, self._noutputs = link_array(self.output[name] for name in self.order)

    def push(self) -> None:
        """Spreads each input link in one native call."""
        if self._noutputs:
            for i in self._inputs:
                self._spread(i, self._outputs, self._noutputs)
        else:
            for i in self._inputs:
                self._nooutput[0] += lib.link_free_all(i)

    def report(self) -> str:
        """The outputs in the order the hash numbers them."""
        return "outputs by hash: " + (", ".join(self.order) or "none")
