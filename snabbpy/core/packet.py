"""Packets: buffers in DMA memory, recycled through a freelist.

A packet is a cffi pointer to ``struct packet``: ``p.length`` is the payload
length and ``data(p)`` its first byte. Ownership is the rule: whoever holds a
packet either transmits it on a link or frees it, exactly once. The freelist
grows from DMA memory on demand; allocation never calls malloc.

C keeps to the rule: a packet freed twice, freed or sent again while a link
holds it, or sent after it was freed is refused (left as it was) and
recorded, and the engine stops the run naming it (core/accounting.py).
"""

from __future__ import annotations

import numpy as np

from snabbpy.core.memory import dma, reservation
from snabbpy.core.native import ffi, lib

PAYLOAD_SIZE: int = lib.PACKET_PAYLOAD_SIZE
HEADROOM: int = lib.PACKET_HEADROOM
#: Packets carved from DMA memory at a time when the freelist runs dry.
GROW_BY = 1024

#: Bytes between packets in memory.
STRIDE = (ffi.sizeof("struct packet") + 63) & ~63


@ffi.def_extern()
def snabbpy_packet_grow() -> int:
    """Called by C when the freelist is empty: carves more packets."""
    try:
        size = GROW_BY * STRIDE
        base = dma.allocate(size, align=4096)
        return int(lib.packet_freelist_add(base, size, dma.backend.boundary) > 0)
    except Exception:  # noqa: BLE001 - C cannot take an exception; NULL says it
        return 0


_memory = np.frombuffer(
    ffi.buffer(ffi.cast("uint8_t *", reservation.base), reservation.size), dtype=np.uint8)
_memory_pointer = ffi.cast("uint8_t *", reservation.base)


def memory() -> np.ndarray:
    """All packet memory as one numpy ``uint8`` array (the DMA
    reservation): a payload is ``memory()[off:off + length]`` with ``off``
    from :func:`offset` or a batch's ``offsets``. The array never moves as
    memory grows. Indexing outside the memory in use faults, as in C."""
    return _memory


def memory_base() -> int:
    """The virtual address of ``memory()[0]``."""
    return reservation.base


def memory_pointer():
    """``memory()[0]`` as a ``uint8_t *``, for C calls."""
    return _memory_pointer


def offset(p) -> int:
    """Where ``p``'s payload starts in :func:`memory`."""
    return int(ffi.cast("uintptr_t", p.buf + p.headroom)) - reservation.base


def allocate():
    """Returns an empty packet (length 0). MemoryError when packet memory is
    exhausted."""
    p = lib.packet_allocate()
    if p == ffi.NULL:
        raise MemoryError("no packet memory left (freelist empty and cannot grow)")
    return p


free = lib.packet_free
"""Gives a packet back to the freelist. The caller must not touch it again."""


def clone(p):
    """Returns a new packet with the same payload as ``p``."""
    c = lib.packet_clone(p)
    if c == ffi.NULL:
        raise MemoryError("no packet memory left")
    return c


def data(p):
    """The payload's first byte, as a ``uint8_t *``."""
    return p.buf + p.headroom


def view(p, length: int | None = None):
    """The payload (or its first ``length`` bytes) as a writable memoryview
    of unsigned bytes: ``v[0]`` is an int, ``v[0] = 0xAB`` writes one byte,
    ``v[0:2] = b"ab"`` writes two, ``bytes(v[6:12])`` copies. Valid while you
    own ``p``. Asking for just the bytes you need is fastest."""
    return memoryview(ffi.buffer(p.buf + p.headroom, p.length if length is None else length))


def to_bytes(p) -> bytes:
    """A copy of the payload."""
    return ffi.buffer(p.buf + p.headroom, p.length)[:]


def from_bytes(b: bytes | bytearray | memoryview):
    """A new packet holding a copy of ``b``."""
    p = allocate()
    append(p, b)
    return p


def _check(result: int, what: str, p, n: int) -> None:
    if result < 0:
        raise ValueError(
            f"packet {what} by {n} bytes does not fit (length {p.length}, "
            f"payload limit {PAYLOAD_SIZE})"
        )


def append(p, b: bytes | bytearray | memoryview) -> None:
    """Adds ``b`` at the end of the payload."""
    _check(lib.packet_append(p, ffi.from_buffer(b), len(b)), "append", p, len(b))


def prepend(p, b: bytes | bytearray | memoryview) -> None:
    """Adds ``b`` in front of the payload (into the headroom when it fits)."""
    _check(lib.packet_prepend(p, ffi.from_buffer(b), len(b)), "prepend", p, len(b))


def shiftleft(p, n: int) -> None:
    """Removes ``n`` bytes from the front of the payload."""
    _check(lib.packet_shiftleft(p, n), "shiftleft", p, n)


def shiftright(p, n: int) -> None:
    """Adds ``n`` bytes (unspecified content) in front of the payload."""
    _check(lib.packet_shiftright(p, n), "shiftright", p, n)


def resize(p, n: int) -> None:
    """Sets the payload length to ``n``, zero-filling any new bytes."""
    _check(lib.packet_resize(p, n), "resize", p, n)


def stats() -> dict[str, int]:
    """Lifetime counts: allocated, freed, freed_bytes, created (carved), nfree (on the
    freelist), max (most that may be created), exhausted (allocations refused
    for want of memory) and the slot of the app refused first (see
    core/accounting.py). ``allocated - freed`` packets are in links or held by
    apps."""
    s = ffi.new("struct packet_stats *")
    lib.packet_get_stats(s)
    return {k: getattr(s, k) for k in ("allocated", "freed", "freed_bytes", "created", "nfree",
                                       "max", "exhausted", "exhausted_app")}


def set_max_packets(n: int) -> None:
    """At most ``n`` packets will exist (never fewer than already do, nor
    more than the freelist holds); running out is reported afresh."""
    lib.packet_set_max(n)


def double_frees() -> int:
    """Packets on the freelist more than once (each a double free, which
    will hand one buffer to two owners). For tests: it sorts the freelist."""
    return lib.packet_freelist_duplicates()


def in_use() -> int:
    """Packets allocated and not yet freed: in links or held by apps."""
    s = stats()
    return s["allocated"] - s["freed"]


def selftest() -> None:
    """Exercises the packet API; raises AssertionError on a fault."""
    before = in_use()
    p = from_bytes(b"world")
    prepend(p, b"hello ")
    assert to_bytes(p) == b"hello world"
    shiftleft(p, 6)
    append(p, b"!")
    assert to_bytes(p) == b"world!"
    c = clone(p)
    resize(c, 8)
    assert to_bytes(c) == b"world!\0\0"
    free(p)
    free(c)
    assert in_use() == before
    print("packet selftest: ok")
