"""Hostile packed rings thrown at packed_device.c: random descriptors,
availability bits, chains that wrap past the end of the ring, indirect
tables and addresses, from any ring state. Guest memory sits between
PROT_NONE guard pages, so a single byte read or written outside the
memory table kills the test; the counters must account for every chain
and every packet, and every chain taken is handed back in the call."""

import struct

from guarded_memory import GPA, REGION, GuardedMemory, addresses, lengths
from hypothesis import given, settings
from hypothesis import strategies as st

from snabbpy.core import packet
from snabbpy.core.link import Link
from snabbpy.core.native import ffi, lib

SIZE = 50  # queue size: packed rings need no power of two
REASONS = ("bad_index", "bad_addr", "bad_chain", "bad_indirect", "bad_direction",
           "bad_header", "too_long")
MEM = GuardedMemory()
RING, DRIVER, DEVICE = GPA[0], GPA[0] + 0x1000, GPA[0] + 0x1004  # in region 0
AVAIL, USED = lib.PK_DESC_F_AVAIL, lib.PK_DESC_F_USED

# flags: NEXT/WRITE/INDIRECT, then how the driver marked it: 0 available in
# its lap (mostly), else any AVAIL/USED bits.
descriptors = st.tuples(addresses, lengths, st.integers(0, 0xFFFF), st.integers(0, 7),
                        st.one_of(st.just(0), st.just(0), st.integers(0, 3)))


def _flags(slot_wrap: int, low: int, marking: int) -> int:
    if marking == 0:
        return low | (AVAIL if slot_wrap else USED)
    return low | (AVAIL if marking & 1 else 0) | (USED if marking & 2 else 0)


def _write_ring(descs, base, noise=()):
    """Descriptors from slot base onward in base's lap, the slots before
    it in the next lap (as a driver that went round would leave them)."""
    for at, data in noise:
        end = GPA[1] if at < GPA[1] else GPA[1] + REGION
        MEM.write(at, data[:end - at])
    start, wrap = base & 0x7FFF, base >> 15 & 1
    for i, (addr, length, id_, low, marking) in enumerate(descs):
        slot_wrap = wrap if i >= start else wrap ^ 1
        MEM.write(RING + 16 * i, struct.pack("<QIHH", addr, length, id_,
                                             _flags(slot_wrap, low, marking)))
    MEM.write(DRIVER, bytes(8))


def _start(flags, base):
    q, s = ffi.new("struct pd_queue *"), ffi.new("struct dr_stats *")
    assert lib.pd_queue_start(q, MEM.c, s, SIZE, RING, DRIVER, DEVICE, base, flags) == 0
    return q, s


ring_contents = dict(
    descs=st.lists(descriptors, min_size=SIZE, max_size=SIZE),
    base=st.tuples(st.integers(0, SIZE - 1), st.integers(0, 1)).map(lambda t: t[0] | t[1] << 15),
    flags=st.integers(0, 15) | st.integers(0, 15).map(lambda f: f | lib.PD_F_IN_ORDER),
    noise=st.lists(st.tuples(st.integers(DEVICE + 4, GPA[1] + REGION - 1),
                             st.binary(min_size=16, max_size=256)), max_size=8),
)


def _slots(a: int, b: int) -> int:
    """Ring slots from position a forward to position b."""
    d = (b & 0x7FFF) - (a & 0x7FFF)
    return d + SIZE if (a ^ b) & 0x8000 else d


@settings(max_examples=400, deadline=None)
@given(**ring_contents)
def test_hostile_tx_rings_are_consumed_and_counted(descs, base, flags, noise):
    _write_ring(descs, base, noise)
    q, s = _start(flags, base)
    out, before = Link("fuzz"), packet.in_use()
    sent = lib.pd_tx(q, out.c, 1000)
    assert q.used_idx == q.last_avail and _slots(base, q.last_avail) <= SIZE
    assert s.chains == s.packets + sum(getattr(s, r) for r in REASONS)
    assert sent == s.packets == out.nreadable()
    # It stops at the first slot not available, or after a whole lap.
    assert lib.pd_queue_pending(q) == 0 or _slots(base, q.last_avail) == SIZE
    out.drain()
    assert packet.in_use() == before
    assert lib.pd_queue_stop(q) == q.last_avail | q.used_idx << 16


@settings(max_examples=400, deadline=None)
@given(sizes=st.lists(st.integers(0, 10240), min_size=1, max_size=8), **ring_contents)
def test_hostile_rx_rings_never_lose_a_packet_uncounted(sizes, descs, base, flags, noise):
    _write_ring(descs, base, noise)
    q, s = _start(flags, base)
    inp, before = Link("fuzz"), packet.in_use()
    for n in sizes:
        inp.transmit(packet.from_bytes(b"\xab" * n))
    delivered = lib.pd_rx(q, inp.c, 1000)
    assert delivered == s.packets
    assert len(sizes) == delivered + s.too_long + inp.nreadable()
    assert q.used_idx == q.last_avail
    inp.drain()
    assert packet.in_use() == before


def test_a_chain_wrapping_past_the_end_is_one_packet():
    """Slots SIZE-1 and 0 (the next lap) make one chain: header, then data."""
    MEM.write(GPA[0] + 0x4000, bytes(12) + b"wrapped!")
    hdr = (GPA[0] + 0x4000, 12, 7, lib.PK_DESC_F_NEXT, 0)
    data = (GPA[0] + 0x400C, 8, 9, 0, 0)
    descs = [data] + [(0, 0, 0, 0, 3)] * (SIZE - 2) + [hdr]
    _write_ring(descs, (SIZE - 1) | 0x8000)
    q, s = _start(lib.DR_F_VERSION_1, (SIZE - 1) | 0x8000)
    out = Link("wrap")
    assert lib.pd_tx(q, out.c, 10) == 1
    assert packet.to_bytes(out.receive()) == b"wrapped!"
    assert q.last_avail == 1  # slot 1 of the next lap: wrap counter 0
    addr, length, id_, flags = struct.unpack("<QIHH", MEM.read(RING + 16 * (SIZE - 1), 16))
    assert (id_, length, flags) == (9, 0, AVAIL | USED)  # the last slot's id, at the head


def test_an_unfinished_chain_is_handed_back_as_bad_chain():
    """NEXT into a slot the driver has not made available yet."""
    MEM.write(GPA[0] + 0x4000, bytes(64))
    descs = [(GPA[0] + 0x4000, 64, 3, lib.PK_DESC_F_NEXT, 0)] + [(0, 0, 0, 0, 3)] * (SIZE - 1)
    _write_ring(descs, 0x8000)
    q, s = _start(lib.DR_F_VERSION_1, 0x8000)
    assert lib.pd_tx(q, Link("cut").c, 10) == 0
    assert (s.bad_chain, s.chains, q.last_avail) == (1, 1, 0x8001)
