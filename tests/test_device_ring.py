"""The device side of a split virtqueue (device_ring.c) against rings a
minimal driver (``FakeQueue``) builds in fake guest memory."""

import struct

import pytest
from helpers import drain

from snabbpy.core import packet
from snabbpy.core.link import Link
from snabbpy.core.native import ffi, lib
from snabbpy.lib.virtio.constants import DescFlag
from snabbpy.testing.fake_guest import USER_OFFSET, FakeMemory, FakeQueue

MRG = lib.DR_F_MRG_RXBUF | lib.DR_F_VERSION_1
STATS = [name for name, _ in ffi.typeof("struct dr_stats").fields]


class Device:
    """One device queue on a fresh fake ring."""

    def __init__(self, flags=MRG | lib.DR_F_INDIRECT, size=16, regions=None, event_idx=False):
        self.mem = FakeMemory(regions or [(0x10000, 1 << 20)])
        self.ring = FakeQueue(self.mem, size, event_idx=event_idx)
        self.q = ffi.new("struct dr_queue *")
        self.s = ffi.new("struct dr_stats *")
        assert self.ring.start(self.q, self.s, flags) == 0

    def stats(self):
        return {name: getattr(self.s, name) for name in STATS if getattr(self.s, name)}


@pytest.fixture
def link():
    before = packet.in_use()
    link = Link("test")
    yield link
    link.drain()
    assert packet.in_use() == before


# -- memory table ------------------------------------------------------------

def test_translate_needs_the_whole_range_in_one_region():
    mem = FakeMemory([(0x1000, 0x1000), (0x2000, 0x1000)])
    assert mem.c.nregions == 2
    assert lib.dr_translate(mem.c, 0x1000, 0x1000) != ffi.NULL
    assert lib.dr_translate(mem.c, 0x1800, 0x1000) == ffi.NULL  # straddles
    assert lib.dr_translate(mem.c, 0x3000, 1) == ffi.NULL
    assert lib.dr_translate(mem.c, 0xFFFF_FFFF_FFFF_FFFF, 2) == ffi.NULL
    assert lib.dr_translate_user(mem.c, 0x1000 + USER_OFFSET, 16) != ffi.NULL
    assert lib.dr_translate_user(mem.c, 0x1000, 16) == ffi.NULL


def test_memory_table_refuses_overlaps_empty_and_wrapping_regions():
    m = ffi.new("struct dr_memory *")
    lib.dr_memory_clear(m)
    assert lib.dr_memory_add(m, 0x1000, 0x1000, 0x1000, 0x5000) == 0
    assert lib.dr_memory_add(m, 0x1800, 0x9000, 0x1000, 0x6000) == lib.DR_E_REGION
    assert lib.dr_memory_add(m, 0x9000, 0x9000, 0, 0x6000) == lib.DR_E_REGION
    assert lib.dr_memory_add(m, 2**64 - 16, 0x9000, 32, 0x6000) == lib.DR_E_REGION
    for i in range(1, lib.DR_MAX_REGIONS):
        assert lib.dr_memory_add(m, 0x10000 * i, 0x10000 * i, 16, 0x6000) == 0
    assert lib.dr_memory_add(m, 0x900000, 0x900000, 16, 0x6000) == lib.DR_E_FULL


def test_queue_start_checks_size_and_ring_addresses():
    d = Device()
    q, s, ring = d.q, d.s, d.ring
    assert ring.start(q, s, 0) == 0 and q.ready
    assert lib.dr_queue_start(q, d.mem.c, s, 12, ring.desc, ring.avail, ring.used, 0, 0) \
        == lib.DR_E_SIZE
    # Ring addresses are frontend user addresses: a guest physical one misses.
    assert lib.dr_queue_start(q, d.mem.c, s, 16, ring.desc, ring.avail + USER_OFFSET,
                              ring.used + USER_OFFSET, 0, 0) == lib.DR_E_DESC
    assert lib.dr_queue_start(q, d.mem.c, s, 16, ring.desc + USER_OFFSET + 8,
                              ring.avail + USER_OFFSET, ring.used + USER_OFFSET, 0, 0) \
        == lib.DR_E_DESC
    assert lib.dr_queue_start(q, d.mem.c, s, 16, ring.desc + USER_OFFSET,
                              ring.avail + USER_OFFSET, 2**64 - 8, 0, 0) == lib.DR_E_USED
    assert not q.ready


# -- guest TX -> link ----------------------------------------------------------

def test_tx_copies_packets_without_the_header_and_returns_the_chains(link):
    d = Device()
    heads = [d.ring.post_tx(bytes([i]) * 60) for i in range(3)]
    assert lib.dr_tx(d.q, link.c, 100) == 3
    assert drain(link) == [bytes([i]) * 60 for i in range(3)]
    assert d.ring.take_used() == [(h, 0) for h in heads]
    assert d.stats() == {"packets": 3, "bytes": 180, "chains": 3, "interrupts": 1}
    assert d.q.interrupt == 1


def test_tx_header_may_sit_in_its_own_descriptor_or_a_legacy_10_bytes(link):
    d = Device(flags=0)  # legacy: 10-byte header
    d.ring.post_tx(b"abc" * 20, hdr_len=10, split_header=True)
    d.ring.post_tx(b"xyz" * 20, hdr_len=10)
    assert lib.dr_tx(d.q, link.c, 100) == 2
    assert drain(link) == [b"abc" * 20, b"xyz" * 20]


def test_tx_follows_indirect_tables(link):
    d = Device()
    buf = d.mem.alloc(12 + 100)
    d.mem.write(buf, bytes(12) + b"i" * 100)
    table = d.mem.alloc(32)
    d.mem.write(table, struct.pack("<QIHHQIHH", buf, 50, DescFlag.NEXT, 1,
                                   buf + 50, 62, 0, 0))
    d.ring.add_chain([(table, 32, DescFlag.INDIRECT)])
    assert lib.dr_tx(d.q, link.c, 100) == 1
    assert drain(link) == [b"i" * 100]


def test_tx_splits_a_buffer_across_adjacent_regions(link):
    d = Device(regions=[(0x10000, 0x10000), (0x20000, 0x10000)])
    frame = bytes(range(200))
    buf = 0x20000 - 100
    d.mem.write(buf, bytes(12) + frame[:88])
    d.mem.write(0x20000, frame[88:])
    d.ring.add_chain([(buf, 212, 0)])
    assert lib.dr_tx(d.q, link.c, 100) == 1
    assert drain(link) == [frame]


def test_tx_stops_when_the_link_is_full_and_leaves_the_rest_queued(link):
    d = Device(size=16)
    for _ in range(link.nwritable() - 2):
        link.transmit(packet.allocate())
    for _ in range(5):
        d.ring.post_tx(b"x" * 60)
    assert lib.dr_tx(d.q, link.c, 100) == 2
    assert lib.dr_queue_pending(d.q) == 3
    link.drain()
    assert lib.dr_tx(d.q, link.c, 100) == 3


def test_tx_without_a_link_discards_and_counts(link):
    d = Device()
    d.ring.post_tx(b"x" * 60)
    assert lib.dr_tx(d.q, ffi.NULL, 100) == 0
    assert d.stats()["discarded"] == 1 and len(d.ring.take_used()) == 1


@pytest.mark.parametrize("chain, reason", [
    ([(0x500000000, 72, 0)], "bad_addr"),
    ([(0x10000 + (1 << 20) - 8, 72, 0)], "bad_addr"),  # runs off the region
    ([(0x20000, 72, DescFlag.WRITE)], "bad_direction"),
    ([(0x20000, 8, 0)], "bad_header"),
    ([(0x20000, 12 + 10241, 0)], "too_long"),
    ([(0x20000, 32, DescFlag.INDIRECT | DescFlag.NEXT), (0x20000, 72, 0)], "bad_indirect"),
    ([(0x20000, 24, DescFlag.INDIRECT)], "bad_indirect"),  # not a multiple of 16
])
def test_tx_bad_chains_are_returned_with_len_0_and_counted(link, chain, reason):
    d = Device()
    head = d.ring.add_chain(chain)
    good = d.ring.post_tx(b"ok" * 30)
    assert lib.dr_tx(d.q, link.c, 100) == 1
    assert drain(link) == [b"ok" * 30]
    assert d.ring.take_used() == [(head, 0), (good, 0)]
    assert d.stats()[reason] == 1


def test_tx_detects_loops_and_out_of_table_next(link):
    d = Device(size=4)
    d.ring.write_desc(0, 0x20000, 10, DescFlag.NEXT, 1)
    d.ring.write_desc(1, 0x20000, 10, DescFlag.NEXT, 0)  # back to 0
    d.ring.make_available(0)
    d.ring.write_desc(2, 0x20000, 10, DescFlag.NEXT, 7)  # beyond the table
    d.ring.make_available(2)
    d.ring.make_available(9)  # head beyond the table
    assert lib.dr_tx(d.q, link.c, 100) == 0
    assert d.stats()["bad_chain"] == 1 and d.stats()["bad_index"] == 2
    assert d.ring.take_used() == [(0, 0), (2, 0), (9, 0)]


def test_tx_refuses_nested_indirect_and_indirect_without_the_feature(link):
    d = Device(flags=MRG)
    table = d.mem.alloc(16)
    d.mem.write(table, struct.pack("<QIHH", 0x20000, 72, 0, 0))
    d.ring.add_chain([(table, 16, DescFlag.INDIRECT)])
    nested = Device()
    inner = nested.mem.alloc(16)
    nested.mem.write(inner, struct.pack("<QIHH", inner, 16, DescFlag.INDIRECT, 0))
    nested.ring.add_chain([(inner, 16, DescFlag.INDIRECT)])
    assert lib.dr_tx(d.q, link.c, 10) == 0 and lib.dr_tx(nested.q, link.c, 10) == 0
    assert d.stats()["bad_indirect"] == 1 and nested.stats()["bad_indirect"] == 1


def test_tx_refuses_offloads_that_were_not_negotiated(link):
    d = Device()
    buf = d.mem.alloc(72)
    d.mem.write(buf, bytes([1, 0]) + bytes(70))  # NEEDS_CSUM
    d.ring.add_chain([(buf, 72, 0)])
    assert lib.dr_tx(d.q, link.c, 10) == 0
    assert d.stats()["bad_header"] == 1


def test_an_avail_idx_jump_beyond_the_queue_size_stops_the_queue(link):
    d = Device(size=16)
    d.ring.set_avail_idx(17)
    assert lib.dr_tx(d.q, link.c, 100) == 0
    assert d.q.broken and d.stats() == {"bad_avail_idx": 1}
    assert lib.dr_tx(d.q, link.c, 100) == 0
    assert d.stats() == {"bad_avail_idx": 1}  # counted once, not every breath
    assert d.ring.start(d.q, d.s, MRG) == 0 and not d.q.broken


def test_stop_returns_the_next_avail_index_and_start_resumes_there(link):
    d = Device()
    for _ in range(3):
        d.ring.post_tx(b"x" * 60)
    lib.dr_tx(d.q, link.c, 2)
    assert lib.dr_queue_stop(d.q) == 2
    assert lib.dr_tx(d.q, link.c, 100) == 0
    assert d.ring.start(d.q, d.s, MRG, last_avail=2) == 0
    assert d.q.used_idx == 2  # picked up from the used ring
    assert lib.dr_tx(d.q, link.c, 100) == 1


# -- link -> guest RX ---------------------------------------------------------

def test_rx_writes_header_and_data_into_one_buffer_per_packet(link):
    d = Device()
    posted = [d.ring.post_rx(2048) for _ in range(2)]
    for i in range(2):
        link.transmit(packet.from_bytes(bytes([i + 1]) * 100))
    assert lib.dr_rx(d.q, link.c, 100) == 2
    assert d.ring.take_used() == [(h, 112) for h, _ in posted]
    for i, (_, buf) in enumerate(posted):
        hdr = d.mem.read(buf, 12)
        assert hdr == bytes(10) + struct.pack("<H", 1)
        assert d.mem.read(buf + 12, 100) == bytes([i + 1]) * 100
    assert d.stats() == {"packets": 2, "bytes": 200, "chains": 2, "interrupts": 1}


def test_rx_merges_buffers_for_a_jumbo_packet(link):
    d = Device()
    posted = [d.ring.post_rx(4096, pieces=2) for _ in range(3)]
    frame = bytes(i % 251 for i in range(9000))
    link.transmit(packet.from_bytes(frame))
    assert lib.dr_rx(d.q, link.c, 100) == 1
    assert d.ring.take_used() == [(posted[0][0], 4096), (posted[1][0], 4096),
                                  (posted[2][0], 9012 - 8192)]
    data = b"".join(d.mem.read(buf, 4096) for _, buf in posted)
    assert struct.unpack_from("<H", data, 10)[0] == 3
    assert data[12:9012] == frame


def test_rx_without_mrg_rxbuf_drops_a_packet_too_big_for_the_buffer(link):
    d = Device(flags=lib.DR_F_VERSION_1)
    head, buf = d.ring.post_rx(1536)
    link.transmit(packet.from_bytes(b"j" * 9000))
    link.transmit(packet.from_bytes(b"s" * 60))
    assert lib.dr_rx(d.q, link.c, 100) == 1
    assert d.stats()["too_long"] == 1
    assert d.ring.take_used() == [(head, 72)]  # the buffer went to the next packet
    assert d.mem.read(buf + 12, 60) == b"s" * 60


def test_rx_leaves_packets_on_the_link_until_the_guest_posts_buffers(link):
    d = Device()
    d.ring.post_rx(4096)
    link.transmit(packet.from_bytes(b"a" * 9000))  # needs 3 buffers
    assert lib.dr_rx(d.q, link.c, 100) == 0
    assert link.nreadable() == 1 and d.stats() == {"no_buffers": 1}
    assert lib.dr_queue_pending(d.q) == 1  # the one buffer was given back
    d.ring.post_rx(4096)
    d.ring.post_rx(4096)
    assert lib.dr_rx(d.q, link.c, 100) == 1 and link.empty()


def test_rx_returns_bad_chains_and_keeps_delivering(link):
    d = Device()
    bad = d.ring.add_chain([(0x20000, 100, 0)])  # device-readable: wrong way
    good, buf = d.ring.post_rx(2048)
    link.transmit(packet.from_bytes(b"p" * 64))
    assert lib.dr_rx(d.q, link.c, 100) == 1
    assert d.ring.take_used() == [(bad, 0), (good, 76)]
    assert d.stats()["bad_direction"] == 1


def test_rx_honours_no_interrupt_and_event_idx(link):
    d = Device()
    d.ring.set_avail_flags(1)  # VRING_AVAIL_F_NO_INTERRUPT
    d.ring.post_rx(2048)
    link.transmit(packet.from_bytes(b"x" * 60))
    lib.dr_rx(d.q, link.c, 100)
    assert d.q.interrupt == 0

    e = Device(flags=MRG | lib.DR_F_EVENT_IDX, event_idx=True)
    e.ring.set_used_event(1)  # interrupt me when used idx passes 1
    for _ in range(3):
        e.ring.post_rx(2048)
    link.transmit(packet.from_bytes(b"x" * 60))
    lib.dr_rx(e.q, link.c, 100)
    assert e.q.interrupt == 0  # used idx 0 -> 1 did not pass entry 1
    link.transmit(packet.from_bytes(b"x" * 60))
    lib.dr_rx(e.q, link.c, 100)
    assert e.q.interrupt == 1  # 1 -> 2 did
    assert e.s.interrupts == 1


def test_a_breath_walks_a_bounded_number_of_descriptors(link):
    """Chains as long as the queue cannot stall a breath: each call stops
    taking chains once it has walked DR_WALK_BUDGET descriptors."""
    size = 4096
    d = Device(size=size, regions=[(0x10000, 4 << 20)])
    buf = d.mem.alloc(72)
    d.mem.write(buf, bytes(72))
    for i in range(size - 1):  # one long chain of empty buffers, then the packet
        d.ring.write_desc(i, buf, 0, DescFlag.NEXT, i + 1)
    d.ring.write_desc(size - 1, buf, 72, 0, 0)
    for _ in range(40):
        d.ring.make_available(0)  # the same long chain, 40 times over
    calls, sent = 0, 0
    while sent < 40:
        sent += lib.dr_tx(d.q, link.c, 1000)
        calls += 1
        link.drain()
    per_call = lib.DR_WALK_BUDGET // size + 1
    assert calls == -(-40 // per_call) and d.stats()["packets"] == 40
