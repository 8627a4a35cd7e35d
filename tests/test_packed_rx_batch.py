"""pd_rx's four-at-once path (packed_device.c, prx_batch) against the
one-slot path it stands in for: four single-slot writable chains in a row
go out at once, and anything else in a batch's four slots (a readable
slot, a chain, an indirect table, a buffer not mapped whole or too short,
the end of the ring) sends the packet the one-slot way, which checks and
counts it. Guest memory sits between PROT_NONE guard pages (a byte
written past a buffer kills the test). The property test compares a
call of many packets (batches where they fit) with the same ring given
one packet per call (never a batch: it needs four to send)."""

import struct

from guarded_memory import GPA, REGION, GuardedMemory
from hypothesis import given, settings
from hypothesis import strategies as st

from snabbpy.core import packet
from snabbpy.core.link import Link
from snabbpy.core.native import ffi, lib

MEM = GuardedMemory()
RING, DRIVER, DEVICE = GPA[0], GPA[0] + 0x1000, GPA[0] + 0x1004
BUFFERS, BUFFER_LEN = GPA[0] + 0x2000, 160
AVAIL, USED = lib.PK_DESC_F_AVAIL, lib.PK_DESC_F_USED
NEXT, WRITE, INDIRECT = lib.PK_DESC_F_NEXT, lib.PK_DESC_F_WRITE, lib.PK_DESC_F_INDIRECT
V1_MRG = lib.DR_F_VERSION_1 | lib.DR_F_MRG_RXBUF
STATS = [name for name, _ in ffi.typeof("struct dr_stats").fields
         if name not in ("no_buffers", "interrupts")]  # per call, not per packet

# What a slot of the ring holds: its (address, length, low flags).
KINDS = {
    "good": lambda i: (BUFFERS + BUFFER_LEN * i, BUFFER_LEN, WRITE),
    "readable": lambda i: (BUFFERS + BUFFER_LEN * i, BUFFER_LEN, 0),
    "chained": lambda i: (BUFFERS + BUFFER_LEN * i, 16, WRITE | NEXT),
    "indirect": lambda i: (BUFFERS + BUFFER_LEN * i, 32, WRITE | INDIRECT),
    "unmapped": lambda i: (GPA[1] + REGION - 40, BUFFER_LEN, WRITE),
    "in_two_regions": lambda i: (GPA[1] - 50, BUFFER_LEN, WRITE),
    "short": lambda i: (BUFFERS + BUFFER_LEN * i, 20, WRITE),
    "at_the_guard_page": lambda i: (GPA[1] + REGION - 76, 76, WRITE),
}


def _desc(slot, addr, length, id_, low, lap):
    """One descriptor as the driver makes it available in lap ``lap``."""
    MEM.write(RING + 16 * slot, struct.pack("<QIHH", addr, length, id_,
                                            low | (AVAIL if lap else USED)))


def _ring(size, base, kinds):
    """Clears guest memory, then writes ``kinds`` from ring state ``base``
    onward (the slots past the end in the next lap) and stops there."""
    for gpa in GPA:
        MEM.write(gpa, bytes(REGION))
    start, lap = base & 0x7FFF, base >> 15
    for k, kind in enumerate(kinds):
        slot = (start + k) % size
        addr, length, low = KINDS[kind](slot)
        _desc(slot, addr, length, 100 + slot, low, lap ^ (start + k >= size))


def _run(size, base, flags, kinds, lengths, max_per_call):
    """pd_rx until it sends no more; returns what the guest sees and the counters."""
    _ring(size, base, kinds)
    q, s = ffi.new("struct pd_queue *"), ffi.new("struct dr_stats *")
    assert lib.pd_queue_start(q, MEM.c, s, size, RING, DRIVER, DEVICE, base, flags) == 0
    inp, before = Link("batch"), packet.in_use()
    for k, n in enumerate(lengths):
        inp.transmit(packet.from_bytes(bytes([k + 1]) * n))
    while lib.pd_rx(q, inp.c, max_per_call):
        pass
    left = inp.nreadable()
    inp.drain()
    assert packet.in_use() == before
    assert q.used_idx == q.last_avail
    guest = MEM.read(GPA[0], REGION) + MEM.read(GPA[1], REGION)
    return guest, {n: getattr(s, n) for n in STATS}, q.last_avail, left


@settings(max_examples=300, deadline=None)
@given(size=st.sampled_from([8, 50, 64]), start=st.integers(0, 63), lap=st.integers(0, 1),
       flags=st.sampled_from([0, lib.DR_F_VERSION_1, V1_MRG]),
       kinds=st.lists(st.sampled_from(["good"] * 12 + sorted(KINDS)), max_size=64),
       lengths=st.lists(st.one_of(st.integers(0, 3), st.integers(0, 148)), max_size=70))
def test_batches_send_what_one_packet_at_a_time_sends(size, start, lap, flags, kinds,
                                                      lengths):
    base = start % size | lap << 15
    kinds = kinds[:size]
    batched = _run(size, base, flags, kinds, lengths, 1000)
    one_by_one = _run(size, base, flags, kinds, lengths, 1)
    assert batched == one_by_one


def _give(size, base, flags, kinds, payloads):
    """One pd_rx call of ``payloads`` on a fresh ring; the queue, its
    counters, packets sent and packets left on the link."""
    _ring(size, base, kinds)
    q, s = ffi.new("struct pd_queue *"), ffi.new("struct dr_stats *")
    assert lib.pd_queue_start(q, MEM.c, s, size, RING, DRIVER, DEVICE, base, flags) == 0
    inp = Link("batch")
    for data in payloads:
        inp.transmit(packet.from_bytes(data))
    sent = lib.pd_rx(q, inp.c, 1000)
    left = inp.nreadable()
    inp.drain()
    return q, s, sent, left


def _buffer(slot, n, hdr_len=12):
    """The ``n`` payload bytes the guest's buffer of ``slot`` got."""
    return MEM.read(BUFFERS + BUFFER_LEN * slot + hdr_len, n)


def test_a_readable_slot_inside_a_batch_is_counted_and_the_rest_delivered():
    payloads = [bytes([k]) * 60 for k in range(1, 9)]
    kinds = ["good", "good", "readable"] + ["good"] * 5
    q, s, sent, left = _give(64, 0x8000, V1_MRG, kinds, payloads)
    assert (sent, left, s.packets, s.bad_direction, s.chains) == (7, 1, 7, 1, 8)
    assert s.no_buffers == 1  # the eighth packet found no ninth buffer
    assert [_buffer(slot, 60) for slot in (0, 1, 3, 4, 5, 6, 7)] == payloads[:7]
    ids_lens = [struct.unpack("<QIHH", MEM.read(RING + 16 * i, 16))[1:] for i in range(8)]
    assert ids_lens == [(72, 100 + i, AVAIL | USED | WRITE) if i != 2 else
                        (0, 102, AVAIL | USED) for i in range(8)]
    assert q.last_avail == 0x8000 | 8


def test_batches_cross_the_end_of_the_ring_and_flip_the_wrap_counter():
    """Slots 46-49 in lap 1, then 0-7 in lap 0; and from 48, where four do
    not fit before the end: two the one-slot way, then a batch at 0."""
    for start in (46, 48):
        n = 50 - start + 8
        payloads = [bytes([k]) * (20 + k) for k in range(n)]
        q, s, sent, left = _give(50, start | 0x8000, lib.DR_F_VERSION_1, ["good"] * n, payloads)
        assert (sent, left, s.packets) == (n, 0, n)
        slots = [*range(start, 50), *range(8)]
        assert [_buffer(slot, 20 + k) for k, slot in enumerate(slots)] == payloads
        for k, slot in enumerate(slots):
            _, length, id_, f = struct.unpack("<QIHH", MEM.read(RING + 16 * slot, 16))
            lap_flags = AVAIL | USED if slot >= start else 0
            assert (id_, length, f) == (100 + slot, 12 + 20 + k, lap_flags | WRITE)
        assert q.last_avail == 8  # lap 0


def test_packets_shorter_than_the_header_tail_fill_their_buffer_exactly():
    """hdr_len 10 and packets of 0 and 1 bytes in buffers that end at a
    guard page: the batch path, which writes 12 header bytes, leaves them
    to the one-slot way; 76-byte buffers there take 64-byte packets whole."""
    size = 8
    _ring(size, 0x8000, [])
    exact = [10, 11, 74, 74, 74, 74, 10, 74]  # each buffer exactly its packet
    for slot, n in enumerate(exact):
        _desc(slot, GPA[1] + REGION - n, n, slot, WRITE, 1)
    q, s = ffi.new("struct pd_queue *"), ffi.new("struct dr_stats *")
    assert lib.pd_queue_start(q, MEM.c, s, size, RING, DRIVER, DEVICE, 0x8000, 0) == 0
    inp = Link("short")
    for n in exact:
        inp.transmit(packet.from_bytes(b"\x5a" * (n - 10)))
    assert lib.pd_rx(q, inp.c, 100) == size
    for slot, n in enumerate(exact):
        _, length, id_, f = struct.unpack("<QIHH", MEM.read(RING + 16 * slot, 16))
        assert (id_, length, f) == (slot, n, AVAIL | USED | WRITE)
    assert s.packets == size and s.chains == size
