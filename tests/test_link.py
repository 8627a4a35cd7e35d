"""Links: the ring verbs, batch forms and counters."""

import pytest

from snabbpy.core import packet
from snabbpy.core.link import MAX_PACKETS, Link
from snabbpy.core.native import ffi, lib

pytestmark = pytest.mark.usefixtures("no_leaks")


def test_transmit_then_receive_in_order_with_counters():
    l = Link("a.out -> b.in")
    for size in (60, 61, 62):
        l.transmit(packet.from_bytes(b"x" * size))
    assert l.nreadable() == 3 and not l.empty()
    sizes = []
    while not l.empty():
        p = l.receive()
        sizes.append(p.length)
        packet.free(p)
    assert sizes == [60, 61, 62]
    assert l.stats() == {
        "txpackets": 3, "txbytes": 183, "rxpackets": 3, "rxbytes": 183, "txdrop": 0,
    }


def test_a_full_link_frees_and_counts_what_it_cannot_take():
    l = Link()
    for _ in range(MAX_PACKETS):
        l.transmit(packet.allocate())
    assert l.full() and l.nwritable() == 0
    l.transmit(packet.allocate())
    assert l.stats()["txdrop"] == 1
    assert l.drain() == MAX_PACKETS


def test_receive_on_an_empty_link_returns_null():
    l = Link()
    assert l.receive() == ffi.NULL
    assert l.front() == ffi.NULL


def test_front_peeks_without_receiving():
    l = Link()
    p = packet.from_bytes(b"peek")
    l.transmit(p)
    assert l.front() == p and l.nreadable() == 1
    assert l.drain() == 1


def test_batch_receive_and_transmit():
    a, b = Link(), Link()
    for i in range(10):
        a.transmit(packet.from_bytes(bytes([i])))
    batch = a.receive_batch(4)
    assert [packet.to_bytes(p) for p in batch] == [b"\0", b"\1", b"\2", b"\3"]
    b.transmit_batch(batch)
    assert b.nreadable() == 4 and a.nreadable() == 6
    assert a.drain() + b.drain() == 10


def test_forward_moves_only_what_fits_and_drops_nothing():
    src, dst = Link(), Link()
    for _ in range(MAX_PACKETS):
        dst.transmit(packet.allocate())
    dst_room = 10
    for _ in range(dst_room):
        packet.free(dst.receive())
    for _ in range(20):
        src.transmit(packet.allocate())
    assert lib.link_forward(src.c, dst.c, -1) == dst_room
    assert src.nreadable() == 10 and dst.stats()["txdrop"] == 0
    src.drain()
    dst.drain()


def test_ring_indices_wrap_around_many_times():
    l = Link()
    for i in range(5 * MAX_PACKETS):
        l.transmit(packet.from_bytes(i.to_bytes(4, "little")))
        p = l.receive()
        assert int.from_bytes(packet.to_bytes(p), "little") == i
        packet.free(p)
    assert l.empty()


def test_selftest_passes():
    from snabbpy.core import link

    link.selftest()
