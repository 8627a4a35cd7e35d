"""Packet memory: one reservation, one array that never moves, and one
vhost-user region however many chunks the memory grew by."""

from __future__ import annotations

import itertools

import numpy as np

from snabbpy.core import memory, packet
from snabbpy.core.memory import DMAMemory, MemfdBackend


class SmallChunks(MemfdBackend):
    chunk_size = 1 << 20


def test_memory_is_one_array_over_the_reservation() -> None:
    mem = packet.memory()
    assert mem.dtype == np.uint8 and mem.size == memory.reservation.size
    assert packet.memory_base() == memory.reservation.base
    p = packet.from_bytes(b"hello")
    off = packet.offset(p)
    assert bytes(mem[off:off + 5]) == b"hello"
    mem[off] = 0x4A
    assert packet.to_bytes(p) == b"Jello"
    packet.free(p)


def test_growth_never_moves_the_array_and_stays_one_region() -> None:
    m = DMAMemory(SmallChunks())
    mem = packet.memory()
    addresses = [m.allocate(300 << 10) for _ in range(40)]  # 12 MiB: a dozen chunks
    assert len(m.chunks) > 8  # more than vhost-user's old limit of chunks
    regions = m.regions()
    assert len(regions) == 1
    (r,) = regions
    assert r.fd_offset == 0 and r.size == sum(c.size for c in m.chunks)
    assert r.address == m.chunks[0].address and r.fd == m.chunks[0].fd
    assert packet.memory() is mem
    for a in addresses:  # every allocation is reachable through the array
        off = a - packet.memory_base()
        mem[off:off + 4] = [1, 2, 3, 4]
        assert 0 <= off < mem.size
    # the same bytes through the fd a peer would map
    with open(f"/proc/self/fd/{r.fd}", "rb") as f:
        f.seek(addresses[-1] - r.address)
        assert f.read(4) == b"\1\2\3\4"


def test_view_of_a_packet_reads_and_writes() -> None:
    p = packet.from_bytes(b"abc")
    v = packet.view(p)
    v[0:1] = b"x"
    assert packet.to_bytes(p) == b"xbc"
    assert v[1] == ord("b")            # unsigned bytes, not 1-byte strings
    v[2] = 0xAB
    assert packet.to_bytes(p) == b"xb\xab"
    assert packet.memory()[packet.offset(p) + 2] == 0xAB
    packet.free(p)


def test_packets_are_spread_over_every_cache_set() -> None:
    from snabbpy.core.native import ffi, lib

    stride = lib.packet_stride()
    assert stride >= ffi.sizeof("struct packet") and stride % 64 == 0
    assert (stride // 64) % 2 == 1  # an odd number of cache lines
    ps = [packet.allocate() for _ in range(64)]
    addresses = sorted(int(ffi.cast("uintptr_t", p)) for p in ps)
    assert stride in {b - a for a, b in itertools.pairwise(addresses)}  # carved side by side
    # Headers land in every residue of the line index mod 4, so in every cache
    # set: a stride of 164 lines kept them all in one quarter of the sets.
    assert {(a >> 6) % 4 for a in addresses} == {0, 1, 2, 3}
    for p in ps:
        packet.free(p)
