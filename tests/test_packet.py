"""Packets: allocation, the payload verbs, and the freelist accounting."""

import pytest

from snabbpy.core import packet
from snabbpy.core.native import ffi

pytestmark = pytest.mark.usefixtures("no_leaks")


def test_from_bytes_and_to_bytes_round_trip():
    p = packet.from_bytes(b"\x01\x02\x03")
    assert p.length == 3
    assert packet.to_bytes(p) == b"\x01\x02\x03"
    packet.free(p)


def test_allocate_gives_an_empty_packet_with_default_headroom():
    p = packet.allocate()
    assert p.length == 0 and p.headroom == packet.HEADROOM
    packet.free(p)


def test_freed_packets_are_recycled_lifo():
    p = packet.allocate()
    address = int(ffi.cast("uintptr_t", p))
    packet.free(p)
    q = packet.allocate()
    assert int(ffi.cast("uintptr_t", q)) == address
    assert q.length == 0
    packet.free(q)


def test_prepend_uses_headroom_and_append_adds_at_the_end():
    p = packet.from_bytes(b"payload")
    packet.prepend(p, b"hdr:")
    packet.append(p, b"!")
    assert packet.to_bytes(p) == b"hdr:payload!"
    assert p.headroom == packet.HEADROOM - 4
    packet.free(p)


def test_prepend_beyond_headroom_moves_the_payload():
    p = packet.from_bytes(b"x" * 100)
    big = b"h" * (packet.HEADROOM + 50)
    packet.prepend(p, big)
    assert packet.to_bytes(p) == big + b"x" * 100
    packet.free(p)


def test_shiftleft_removes_from_the_front_and_shiftright_adds_room():
    p = packet.from_bytes(b"ethernet+ip")
    packet.shiftleft(p, 9)
    assert packet.to_bytes(p) == b"ip"
    packet.shiftright(p, 2)
    packet.view(p)[0:2] = b"<<"
    assert packet.to_bytes(p) == b"<<ip"
    packet.free(p)


def test_resize_truncates_and_zero_pads():
    p = packet.from_bytes(b"abcdef")
    packet.resize(p, 3)
    assert packet.to_bytes(p) == b"abc"
    packet.resize(p, 5)
    assert packet.to_bytes(p) == b"abc\0\0"
    packet.free(p)


def test_clone_is_an_independent_copy():
    p = packet.from_bytes(b"original")
    c = packet.clone(p)
    packet.view(c)[0:1] = b"O"
    assert packet.to_bytes(p) == b"original"
    assert packet.to_bytes(c) == b"Original"
    packet.free(p)
    packet.free(c)


def test_payload_limit_is_enforced_with_a_clear_error():
    p = packet.from_bytes(b"x" * packet.PAYLOAD_SIZE)
    with pytest.raises(ValueError, match="does not fit"):
        packet.append(p, b"y")
    with pytest.raises(ValueError, match="does not fit"):
        packet.prepend(p, b"y")
    with pytest.raises(ValueError):
        packet.resize(p, packet.PAYLOAD_SIZE + 1)
    with pytest.raises(ValueError):
        packet.shiftleft(p, packet.PAYLOAD_SIZE + 1)
    assert p.length == packet.PAYLOAD_SIZE
    packet.free(p)


def test_a_full_size_packet_survives_shifts_without_losing_tail_room():
    p = packet.from_bytes(b"a" * 1000)
    for _ in range(50):
        packet.shiftleft(p, 10)
        packet.append(p, b"b" * 10)
    assert p.length == 1000
    packet.append(p, b"c" * (packet.PAYLOAD_SIZE - 1000))  # append itself finds the room
    assert p.length == packet.PAYLOAD_SIZE
    packet.resize(p, 1000)
    packet.resize(p, packet.PAYLOAD_SIZE)
    assert p.length == packet.PAYLOAD_SIZE
    packet.free(p)


def test_the_freelist_grows_on_demand_and_counts_everything():
    before = packet.stats()
    many = [packet.allocate() for _ in range(3 * packet.GROW_BY)]
    grown = packet.stats()
    assert grown["allocated"] - before["allocated"] == len(many)
    assert grown["created"] >= before["created"]
    for p in many:
        packet.free(p)
    after = packet.stats()
    assert after["freed"] - before["freed"] == len(many)
    assert after["nfree"] >= len(many)


def test_packets_live_in_dma_memory_and_do_not_cross_its_boundary():
    from snabbpy.core.memory import dma

    p = packet.allocate()
    address = int(ffi.cast("uintptr_t", p))
    chunk = dma.chunk_of(address)
    end = address + ffi.sizeof("struct packet")
    assert chunk.contains(end - 1)
    assert address // dma.backend.boundary == (end - 1) // dma.backend.boundary
    assert address % 64 == 0
    packet.free(p)


def test_selftest_passes():
    packet.selftest()
