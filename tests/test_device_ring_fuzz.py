"""Hostile rings thrown at device_ring.c: random descriptor tables, avail
rings and addresses. Guest memory sits between PROT_NONE guard pages, so a
single byte read or written outside the memory table kills the test; the
counters must account for every chain and every packet."""

import struct

from guarded_memory import GPA, REGION, GuardedMemory, addresses, lengths
from hypothesis import given, settings
from hypothesis import strategies as st

from snabbpy.core import packet
from snabbpy.core.link import Link
from snabbpy.core.native import ffi, lib

SIZE = 64  # queue size
REASONS = ("bad_index", "bad_addr", "bad_chain", "bad_indirect", "bad_direction",
           "bad_header", "too_long")


MEM = GuardedMemory()
DESC, AVAIL, USED = GPA[0], GPA[0] + 0x1000, GPA[0] + 0x2000  # rings in region 0

descriptors = st.tuples(addresses, lengths, st.integers(0, 7),
                        st.one_of(st.integers(0, SIZE - 1), st.integers(0, 0xFFFF)))


def _write_ring(descs, heads, idx, noise=()):
    for at, data in noise:  # stray bytes: buffers, indirect tables, anything
        end = GPA[1] if at < GPA[1] else GPA[1] + REGION
        MEM.write(at, data[:end - at])
    for i, d in enumerate(descs):
        MEM.write(DESC + 16 * i, struct.pack("<QIHH", *d))
    MEM.write(AVAIL, struct.pack("<HH", 0, idx))
    for i, h in enumerate(heads):
        MEM.write(AVAIL + 4 + 2 * i, struct.pack("<H", h))
    MEM.write(USED, bytes(4))


def _start(flags):
    q, s = ffi.new("struct dr_queue *"), ffi.new("struct dr_stats *")
    assert lib.dr_queue_start(q, MEM.c, s, SIZE, DESC, AVAIL, USED, 0, flags) == 0
    return q, s


ring_contents = dict(
    descs=st.lists(descriptors, min_size=SIZE, max_size=SIZE),
    heads=st.lists(st.one_of(st.integers(0, SIZE - 1), st.integers(0, 0xFFFF)),
                   min_size=SIZE, max_size=SIZE),
    idx=st.one_of(st.integers(0, SIZE), st.integers(0, 0xFFFF)),
    flags=st.integers(0, 15),
    noise=st.lists(st.tuples(st.integers(DESC + 0x3000, GPA[1] + REGION - 1),
                             st.binary(min_size=16, max_size=256)), max_size=8),
)


@settings(max_examples=400, deadline=None)
@given(**ring_contents)
def test_hostile_tx_rings_are_consumed_and_counted(descs, heads, idx, flags, noise):
    _write_ring(descs, heads, idx, noise)
    q, s = _start(flags)
    out, before = Link("fuzz"), packet.in_use()
    sent = lib.dr_tx(q, out.c, 1000)
    if idx > SIZE:
        assert s.bad_avail_idx == 1 and s.chains == 0 and q.broken
    else:
        assert q.last_avail == idx and q.used_idx == idx == s.chains
        assert s.chains == s.packets + sum(getattr(s, r) for r in REASONS)
    assert sent == s.packets == out.nreadable()
    out.drain()
    assert packet.in_use() == before


@settings(max_examples=400, deadline=None)
@given(sizes=st.lists(st.integers(0, 10240), min_size=1, max_size=8), **ring_contents)
def test_hostile_rx_rings_never_lose_a_packet_uncounted(sizes, descs, heads, idx, flags,
                                                       noise):
    _write_ring(descs, heads, idx, noise)
    q, s = _start(flags)
    inp, before = Link("fuzz"), packet.in_use()
    for n in sizes:
        inp.transmit(packet.from_bytes(b"\xab" * n))
    delivered = lib.dr_rx(q, inp.c, 1000)
    assert delivered == s.packets
    assert len(sizes) == delivered + s.too_long + inp.nreadable()
    assert q.used_idx == s.chains
    assert q.last_avail == q.used_idx  # taken chains are returned or given back
    inp.drain()
    assert packet.in_use() == before
