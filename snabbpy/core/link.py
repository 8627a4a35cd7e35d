"""Links: rings of packets between apps, with counters.

A link holds up to ``MAX_PACKETS`` packets. The sending app calls
``transmit(p)`` (a full link frees ``p`` and counts ``txdrop``), the receiving
app ``receive()``. A packet on a link is owned by the link; once received it
is owned by the receiver, which transmits it on or frees it.

The verbs are bound straight to C (``link.receive()`` is one C call), so a
Python app touching every packet still moves millions of them a second::

    while not i.empty():
        p = i.receive()
        ...
        o.transmit(p)
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from snabbpy.core import packet
from snabbpy.core.batch import Batch
from snabbpy.core.counter import Counters
from snabbpy.core.native import ffi, lib

MAX_PACKETS: int = lib.LINK_MAX_PACKETS
COUNTERS = ("txpackets", "txbytes", "rxpackets", "rxbytes", "txdrop")


class Link:
    """A ring of packets from one app's output port to another's input.

    ``c`` is the ``struct link *`` for C code and cffi batch calls. The
    verbs ``empty()``, ``full()``, ``nreadable()``, ``nwritable()``,
    ``receive()``, ``front()`` and ``transmit(p)`` are the C functions of
    link.h bound to this link (one cffi call each, no Python in between)."""

    def __init__(self, name: str = "link", counters: Counters | None = None) -> None:
        self.name = name
        self.counters = counters or Counters(COUNTERS)
        self._c = ffi.new("struct link *")
        self._c.stats = ffi.cast("struct link_stats *", self.counters.pointer)
        c = self.c = self._c
        self.empty = partial(lib.link_empty, c)
        self.full = partial(lib.link_full, c)
        self.nreadable = partial(lib.link_nreadable, c)
        self.nwritable = partial(lib.link_nwritable, c)
        self.receive = partial(lib.link_receive, c)
        self.front = partial(lib.link_front, c)
        self.transmit = partial(lib.link_transmit, c)

    def __repr__(self) -> str:
        return f"<Link {self.name} {self.nreadable()} packets>"

    def receive_batch(self, max_packets: int = MAX_PACKETS) -> Batch:
        """Receives up to ``max_packets`` packets as a :class:`Batch`
        (iterating it yields the packets, as the old list did)."""
        return Batch.receive(self, max_packets)

    def transmit_batch(self, packets) -> None:
        """Transmits every packet of ``packets`` (a list or a Batch) in order."""
        if isinstance(packets, Batch):
            packets.transmit(self)
            return
        lib.link_transmit_batch(self.c, packets, len(packets))

    def stats(self) -> dict[str, int]:
        """The link's counters, by name."""
        return self.counters.snapshot()

    def drain(self) -> int:
        """Frees every packet on the link (when it is removed); returns how
        many. They are counted as received."""
        return lib.link_free_all(self.c)


def link_array(links: Iterable[Link]) -> tuple[Any, int]:
    """``(struct link *[], count)`` of ``links`` for a C call that feeds many
    links at once (Split, Tee, RSS); the array is never empty, for cffi."""
    cs = [link.c for link in links]
    return ffi.new("struct link *[]", cs or 1), len(cs)


def selftest() -> None:
    """Exercises the link API; raises AssertionError on a fault."""
    before = packet.in_use()
    l = Link("selftest")
    assert l.empty() and l.nwritable() == MAX_PACKETS
    for i in range(MAX_PACKETS + 10):
        l.transmit(packet.from_bytes(bytes([i % 256]) * 60))
    assert l.full() and l.nreadable() == MAX_PACKETS
    s = l.stats()
    assert s["txpackets"] == MAX_PACKETS and s["txdrop"] == 10, s
    p = l.receive()
    assert packet.to_bytes(p)[0] == 0
    packet.free(p)
    assert l.drain() == MAX_PACKETS - 1
    assert l.stats()["rxpackets"] == MAX_PACKETS
    assert packet.in_use() == before
    print("link selftest: ok")
