"""The two ring forms of vguest's control queue, over DMA memory (no I/O).

A control command is one chain of two descriptors, the command bytes
(device-readable) then a one-byte ack (device-writable), and the driver
waits for it to come back before it sends another. ``SplitControlRing``
lays that chain on a split ring (descriptor table, avail and used rings),
``PackedControlRing`` on a packed ring (one descriptor ring with both wrap
counters, and the two event areas). Both offer the same three calls:
``addresses()`` for the transport, ``post(command, length, ack)`` and
``answer()``, the (buffer id, length) the device wrote back, or None while
it has not. The chain is always buffer id 0; the device's word is checked
by the caller.
"""

from __future__ import annotations

import struct

from snabbpy.core.memory import DMAMemory
from snabbpy.core.native import ffi, lib
from snabbpy.lib.virtio import DescFlag
from snabbpy.lib.virtio.ring import RingLayout

_DESC = struct.Struct("<QIHH")


def _write(address: int, data: bytes) -> None:
    ffi.memmove(ffi.cast("uint8_t *", address), data, len(data))


def _read(address: int, n: int) -> bytes:
    return ffi.buffer(ffi.cast("uint8_t *", address), n)[:]


class SplitControlRing:
    """A split control ring of ``layout`` (size, offsets) in ``memory``."""

    def __init__(self, layout: RingLayout, align: int, memory: DMAMemory) -> None:
        self.layout, self.memory, self.size = layout, memory, layout.queue_size
        self.area = memory.allocate(layout.total, align)
        _write(self.area, bytes(layout.total))
        self.avail_idx = 0

    def addresses(self) -> tuple[int, int, int]:
        """(descriptor table, avail ring, used ring) as device addresses."""
        lay, da = self.layout, self.memory.dma_address
        return (da(self.area + lay.desc_offset), da(self.area + lay.avail_offset),
                da(self.area + lay.used_offset))

    def post(self, command: int, length: int, ack: int) -> None:
        """Makes the chain (command bytes, ack byte) available as head 0."""
        lay, da = self.layout, self.memory.dma_address
        desc = self.area + lay.desc_offset
        _write(desc, _DESC.pack(da(command), length, DescFlag.NEXT, 1))
        _write(desc + 16, _DESC.pack(da(ack), 1, DescFlag.WRITE, 0))
        avail = self.area + lay.avail_offset
        _write(avail + 4 + 2 * (self.avail_idx % self.size), struct.pack("<H", 0))
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        _write(avail + 2, struct.pack("<H", self.avail_idx))  # x86: stores stay in order

    def answer(self) -> tuple[int, int] | None:
        """(head, length) of the used entry for the last chain, once there."""
        used = self.area + self.layout.used_offset
        if struct.unpack("<H", _read(used + 2, 2))[0] != self.avail_idx:
            return None
        head, length = struct.unpack("<II", _read(used + 4 + 8 * ((self.avail_idx - 1)
                                                                  % self.size), 8))
        return head, length


class PackedControlRing:
    """A packed control ring of ``size`` slots in ``memory``: the ring,
    then the driver area (set to DISABLE: we poll) and the device area."""

    def __init__(self, size: int, align: int, memory: DMAMemory) -> None:
        self.memory, self.size = memory, size
        total = 16 * size + 8
        self.area = memory.allocate(total, align)
        _write(self.area, bytes(total))
        _write(self.area + 16 * size, struct.pack("<HH", 0, lib.PK_EVENT_DISABLE))
        self.pos = lib.PK_WRAP  # slot 0, wrap counter 1: where the next chain goes

    def addresses(self) -> tuple[int, int, int]:
        """(descriptor ring, driver area, device area) as device addresses."""
        da = self.memory.dma_address
        ring = self.area
        return da(ring), da(ring + 16 * self.size), da(ring + 16 * self.size + 4)

    def _slot(self, pos: int) -> int:
        return self.area + 16 * (pos & (lib.PK_WRAP - 1))

    def _marks(self, pos: int) -> int:
        """AVAIL/USED bits that make a descriptor at ``pos`` available."""
        return lib.PK_DESC_F_AVAIL if pos & lib.PK_WRAP else lib.PK_DESC_F_USED

    def post(self, command: int, length: int, ack: int) -> None:
        """Writes the chain at the next two slots, buffer id 0, the flags of
        its first slot last (the device reads nothing before them)."""
        da = self.memory.dma_address
        second = lib.pk_advance(self.pos, 1, self.size)
        _write(self._slot(second), _DESC.pack(da(ack), 1, 0,
                                              DescFlag.WRITE | self._marks(second)))
        _write(self._slot(self.pos), _DESC.pack(da(command), length, 0, 0))
        _write(self._slot(self.pos) + 14,
               struct.pack("<H", DescFlag.NEXT | self._marks(self.pos)))

    def answer(self) -> tuple[int, int] | None:
        """(buffer id, length) of the used descriptor the device wrote over
        the chain's first slot, once there; the ring then moves past it."""
        _, length, buf_id, flags = _DESC.unpack(_read(self._slot(self.pos), 16))
        wrap = bool(self.pos & lib.PK_WRAP)
        if bool(flags & lib.PK_DESC_F_AVAIL) != wrap or bool(flags & lib.PK_DESC_F_USED) != wrap:
            return None
        self.pos = lib.pk_advance(self.pos, 2, self.size)
        return buf_id, length if flags & DescFlag.WRITE else 0
