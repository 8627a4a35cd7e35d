"""A packed ring's device end that uses buffers in order and may hand a
batch back with one used descriptor (VIRTIO_F_IN_ORDER), written in Python
over a ``PackedVirtq``'s ring in the same process, for the tests: it reads
what the driver made available, writes what a real device would (or, when
a test says so, what a hostile one would), and nothing else."""

from __future__ import annotations

import struct

from snabbpy.core.native import ffi, lib
from snabbpy.lib.virtio.packed_virtq import PackedVirtq

WRAP = lib.PK_WRAP
DESC = struct.Struct("<QIHH")


def memory(address: int, n: int):
    """``n`` bytes at ``address``, writable."""
    return ffi.buffer(ffi.cast("uint8_t *", address), n)


class InOrderDevice:
    """The device side of ``vq``: ``take`` reads available buffers in ring
    order, ``use`` hands a batch of them back with one used descriptor."""

    def __init__(self, vq: PackedVirtq) -> None:
        self.vq = vq
        self.avail = WRAP  # next slot to read | wrap << 15
        self.used = WRAP   # next slot to write used | wrap << 15

    def _advance(self, pos: int, n: int = 1) -> int:
        return lib.pk_advance(pos, n, self.vq.size)

    def ahead(self, k: int) -> int:
        """Ring position ``k`` slots after the used position."""
        return self._advance(self.used, k)

    def slot(self, pos: int) -> int:
        """Address of the descriptor at ring position ``pos``."""
        return self.vq.desc_address + 16 * (pos & (WRAP - 1))

    def take(self, limit: int) -> list[tuple[int, int, int, int]]:
        """Up to ``limit`` available buffers, as (id, addr, len, flags)."""
        got = []
        while len(got) < limit:
            addr, length, buf_id, flags = DESC.unpack(memory(self.slot(self.avail), 16)[:])
            wrap = bool(self.avail & WRAP)
            avail, used = bool(flags & lib.PK_DESC_F_AVAIL), bool(flags & lib.PK_DESC_F_USED)
            if avail != wrap or used == wrap:
                break
            got.append((buf_id, addr, length, flags))
            self.avail = self._advance(self.avail)
        return got

    def write_used(self, pos: int, buf_id: int, length: int) -> None:
        """Writes a used descriptor at ``pos`` (its flags last), as is."""
        marks = lib.PK_DESC_F_AVAIL | lib.PK_DESC_F_USED if pos & WRAP else 0
        d = memory(self.slot(pos), 16)
        d[8:14] = struct.pack("<IH", length, buf_id)
        d[14:16] = struct.pack("<H", marks | lib.PK_DESC_F_WRITE * bool(length))

    def use(self, batch: list[tuple[int, int, int, int]], length: int = 0,
            buf_id: int | None = None) -> None:
        """Hands ``batch`` (buffers taken, in order) back with one used
        descriptor at its first slot naming its last buffer (or ``buf_id``),
        then skips past it."""
        self.write_used(self.used, batch[-1][0] if buf_id is None else buf_id, length)
        self.used = self._advance(self.used, len(batch))

    def transmitted(self, batch: list[tuple[int, int, int, int]]) -> list[bytes]:
        """The frames of transmit buffers, their virtio-net headers cut."""
        hdr = self.vq.c.hdr_size
        return [memory(addr, length)[hdr:] for _, addr, length, _ in batch]

    def receive_into(self, buffers: list[tuple[int, int, int, int]], frame: bytes,
                     merged: bool) -> list[int]:
        """Writes ``frame`` across the receive ``buffers`` from the first
        (its header's num_buffers set when ``merged``); returns the length
        written into each buffer used."""
        hdr = self.vq.c.hdr_size
        lengths, rest, first = [], frame, True
        for _, addr, length, _ in buffers:
            room = length - hdr if first else length
            piece, rest = rest[:room], rest[room:]
            start = hdr if first else 0
            memory(addr, length)[start:start + len(piece)] = piece
            lengths.append(start + len(piece))
            if first:
                memory(addr, hdr)[:] = bytes(hdr)
            first = False
            if not rest:
                break
        if merged:
            memory(buffers[0][1], 12)[10:12] = struct.pack("<H", len(lengths))
        return lengths
