"""Interlinks: rings of packets between processes.

An interlink is a file in shared memory (a counter directory under
``/run/snabbpy``) holding one single-producer single-consumer ring: one
process ``send``s the packets of a local link into it, another
``receive``s them onto one of its own links. The payload is copied in and
out (``interlink.c``), so a process's packet memory stays its own: each
process frees what it allocated, a dead worker cannot corrupt another's
freelist, and nothing about packet memory crosses a process boundary.
docs/workers.md measures that copy against passing pointers.

The rule of links holds across: every packet sent into the ring was
freed by the sender (after its copy went in), and every record comes out
as exactly one fresh packet in the receiver or is counted as discarded
with the ring. The counters are a link's: ``txpackets``, ``txbytes``,
``txdrop`` (kept by the sender), ``rxpackets``, ``rxbytes`` (the receiver).
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from snabbpy.core.native import ffi, lib

#: Default bytes of records in a ring: about 13,000 64-byte packets or 680 of 1,500.
CAPACITY = 1 << 20
HEADER_SIZE: int = lib.INTERLINK_HEADER_SIZE
COUNTERS = ("txpackets", "txbytes", "txdrop", "rxpackets", "rxbytes")


class InterlinkError(Exception):
    """A ring file that is not one, or a ring whose records are corrupt."""


def create(path: Path, capacity: int = CAPACITY) -> None:
    """Makes the ring file ``path`` (a power of two ``capacity`` of at
    least 64 KiB); an existing file is replaced."""
    if capacity < lib.INTERLINK_MIN_CAPACITY or capacity & (capacity - 1):
        raise ValueError(f"interlink capacity {capacity}: a power of two of at least "
                         f"{lib.INTERLINK_MIN_CAPACITY}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    with open(tmp, "w+b") as f:
        f.truncate(HEADER_SIZE + capacity)
        with mmap.mmap(f.fileno(), HEADER_SIZE + capacity) as m:
            if lib.interlink_init(ffi.from_buffer(m), len(m)) < 0:
                raise InterlinkError(f"{path}: cannot lay out a ring of {capacity} bytes")
            del m  # no export may outlive the mapping
    os.replace(tmp, path)


class Ring:
    """One process's end of the ring in file ``path`` (made by ``create``).
    Either end may read the counters; only one process sends and only one
    receives."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError as exc:
            raise InterlinkError(f"interlink {self.path}: {exc.strerror}") from None
        try:
            size = os.fstat(fd).st_size
            self._map = mmap.mmap(fd, size) if size > HEADER_SIZE else None
        finally:
            os.close(fd)
        self._c = ffi.new("struct interlink *")
        if self._map is None or lib.interlink_attach(self._c, ffi.from_buffer(self._map),
                                                     size) < 0:
            raise InterlinkError(f"interlink {self.path}: not an interlink ring")
        self.c = self._c

    def send(self, link, max_packets: int = -1) -> int:
        """Copies packets of ``link`` (a Link) into the ring and frees them,
        as many as fit (at most ``max_packets``); returns how many."""
        return lib.interlink_send(self.c, link.c, max_packets)

    def receive(self, link, max_packets: int = -1) -> int:
        """Moves records into fresh packets transmitted on ``link``, as many
        as it has room for; returns how many. InterlinkError on a corrupt
        ring."""
        n = lib.interlink_receive(self.c, link.c, max_packets)
        if n < 0:
            raise InterlinkError(f"interlink {self.path}: corrupt record")
        return n

    def empty(self) -> bool:
        """True when no record waits in the ring."""
        return bool(lib.interlink_empty(self.c))

    def discard(self) -> int:
        """Receiver only: gives up every record left, counted as received
        (as ``Link.drain``); returns how many."""
        n = lib.interlink_discard(self.c)
        if n < 0:
            raise InterlinkError(f"interlink {self.path}: corrupt record")
        return n

    def counters(self) -> dict[str, int]:
        """The ring's link counters, by name."""
        return {name: getattr(self.c.s, name) for name in COUNTERS}

    def close(self) -> None:
        """Unmaps the ring (the file stays: its maker removes it)."""
        if self._map is not None:
            self._c = self.c = None
            self._map.close()
            self._map = None


#: What ``Waiter`` waits for on a ring: records to receive, room to send.
RECORDS: int = lib.INTERLINK_WAIT_RECORDS
ROOM: int = lib.INTERLINK_WAIT_ROOM


class Waiter:
    """Sleeps until another process moves something on one of some rings:
    ``entries`` are ``(ring, what, link)``, ``what`` being ``RECORDS`` (the
    receiving end, ``link`` the one records go onto: not waited for while
    it is full) or ``ROOM`` (the sending end, ``link`` the one waiting to be
    sent: not waited for while it is empty; woken once half the ring is
    free). The other end wakes it (a futex in the ring), so an idle process
    sleeps without polling and wakes as soon as there is work."""

    def __init__(self, entries) -> None:
        entries = list(entries)
        rings = [r.c for r, _, _ in entries]
        self._keep = (entries, rings)  # what the arrays point to lives as long
        self._rings = ffi.new("struct interlink *[]", rings)
        self._links = ffi.new("struct link *[]",
                              [lk.c if lk is not None else ffi.NULL for _, _, lk in entries])
        self._what = ffi.new("int[]", [w for _, w, _ in entries])
        self._n = len(entries)

    def __len__(self) -> int:
        return self._n

    def wait(self, timeout_ns: int) -> int:
        """Sleeps up to ``timeout_ns``: 1 when a ring already had what was
        waited for (no sleep), 2 when the other end woke it, 0 when it timed
        out (or a signal came), -1 when this kernel cannot wait on rings (no
        ``futex_waitv``, before Linux 5.16)."""
        return lib.interlink_wait(self._rings, self._links, self._what, self._n,
                                  max(int(timeout_ns), 0))


def read_counters(path: Path) -> dict[str, int]:
    """The counters of the ring in file ``path``."""
    ring = Ring(path)
    try:
        return ring.counters()
    finally:
        ring.close()


def selftest() -> None:
    """Sends packets through a ring in a temporary file; raises
    AssertionError on a fault."""
    import tempfile

    from snabbpy.core import packet
    from snabbpy.core.link import Link

    before = packet.in_use()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ring"
        create(path, 1 << 16)
        tx, rx, src, dst = Ring(path), Ring(path), Link("src"), Link("dst")
        got = []
        for i in range(3000):
            src.transmit(packet.from_bytes(bytes([i % 256]) * (i % 200)))
            if src.full() or i == 2999:
                while not src.empty() or not tx.empty():
                    tx.send(src)
                    rx.receive(dst)
                    while not dst.empty():
                        p = dst.receive()
                        got.append(packet.to_bytes(p))
                        packet.free(p)
        assert got == [bytes([i % 256]) * (i % 200) for i in range(3000)]
        assert tx.counters()["txpackets"] == rx.counters()["rxpackets"] == 3000
        tx.close()
        rx.close()
    assert packet.in_use() == before
    print("interlink selftest: ok")
