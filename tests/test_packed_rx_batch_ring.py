"""pd_rx's four-at-once path (packed_device.c, prx_batch) on the rings a
driver may really give: sizes that are not a multiple of four (255 and
1000, where a batch meets the end of the ring at every alignment), a
hostile slot in the middle of a batch of four, and the driver's event
suppression asked for a slot inside a batch. Each ring is compared with
the same ring given one packet per call, which never takes the batch
path (it needs four packets to send), and checked against what the
guest must see.

Layout: the ring in region 1 (a 1000-slot ring is 16000 bytes), the
event areas after it, the buffers in region 0, one 128-byte buffer per
packet of the run in the order the slots are used (so that a 1000-slot
ring needs no 1000 buffers)."""

import struct

import pytest
from guarded_memory import GPA, REGION, GuardedMemory

from snabbpy.core import packet
from snabbpy.core.link import Link
from snabbpy.core.native import ffi, lib

MEM = GuardedMemory()
RING = GPA[1]
DRIVER, DEVICE = GPA[1] + 16 * 1024, GPA[1] + 16 * 1024 + 4
BUFFERS, BUFFER_LEN = GPA[0], 128
AVAIL, USED = lib.PK_DESC_F_AVAIL, lib.PK_DESC_F_USED
NEXT, WRITE, INDIRECT = lib.PK_DESC_F_NEXT, lib.PK_DESC_F_WRITE, lib.PK_DESC_F_INDIRECT
V1 = lib.DR_F_VERSION_1
V1_MRG = V1 | lib.DR_F_MRG_RXBUF
V1_EVENT_IDX = V1 | lib.DR_F_EVENT_IDX
STATS = [name for name, _ in ffi.typeof("struct dr_stats").fields
         if name not in ("no_buffers", "interrupts")]  # per call, not per packet

# What the k-th slot used holds: its (address, length, low flags).
KINDS = {
    "good": lambda k: (BUFFERS + BUFFER_LEN * k, BUFFER_LEN, WRITE),
    "unmapped": lambda k: (GPA[1] + REGION + 4096, BUFFER_LEN, WRITE),
    "short": lambda k: (BUFFERS + BUFFER_LEN * k, 20, WRITE),
    "chained": lambda k: (BUFFERS + BUFFER_LEN * k, 16, WRITE | NEXT),
    "chained_whole": lambda k: (BUFFERS + BUFFER_LEN * k, BUFFER_LEN, WRITE | NEXT),
    "indirect": lambda k: (BUFFERS + BUFFER_LEN * k, 32, WRITE | INDIRECT),
    "readable": lambda k: (BUFFERS + BUFFER_LEN * k, BUFFER_LEN, 0),
}


def _slot(size, base, k):
    """(slot, lap) of the k-th slot from ring state ``base``."""
    start, lap = base & 0x7FFF, base >> 15
    return (start + k) % size, lap ^ ((start + k) // size & 1)


def _ring(size, base, kinds):
    """Clears guest memory, then makes ``kinds`` available from ``base``."""
    for gpa in GPA:
        MEM.write(gpa, bytes(REGION))
    for k, kind in enumerate(kinds):
        slot, lap = _slot(size, base, k)
        addr, length, low = KINDS[kind](k)
        MEM.write(RING + 16 * slot, struct.pack("<QIHH", addr, length, 500 + k,
                                                low | (AVAIL if lap else USED)))


def _used(slot):
    """(len, id, flags) of the descriptor at ``slot``."""
    return struct.unpack("<QIHH", MEM.read(RING + 16 * slot, 16))[1:]


def _start(size, base, flags, driver_event=(0, lib.PK_EVENT_ENABLE)):
    q, s = ffi.new("struct pd_queue *"), ffi.new("struct dr_stats *")
    MEM.write(DRIVER, struct.pack("<HH", *driver_event))
    assert lib.pd_queue_start(q, MEM.c, s, size, RING, DRIVER, DEVICE, base, flags) == 0
    return q, s


def _run(size, base, flags, kinds, payloads, max_per_call):
    """pd_rx until it sends no more; what the guest sees, the counters,
    where the ring stands and how many packets were left."""
    _ring(size, base, kinds)
    q, s = _start(size, base, flags)
    inp, before = Link("batch"), packet.in_use()
    for data in payloads:
        inp.transmit(packet.from_bytes(data))
    while lib.pd_rx(q, inp.c, max_per_call):
        pass
    left = inp.nreadable()
    inp.drain()
    assert packet.in_use() == before  # nothing lost, nothing freed twice
    assert q.used_idx == q.last_avail
    guest = MEM.read(GPA[0], REGION) + MEM.read(GPA[1], 16 * size)
    return guest, {n: getattr(s, n) for n in STATS}, q.last_avail, left


def _batched(size, base, flags, kinds, payloads):
    """``_run`` with batches where they fit, checked against the same ring
    given one packet per call (never a batch)."""
    batched = _run(size, base, flags, kinds, payloads, 1000)
    assert batched == _run(size, base, flags, kinds, payloads, 1)
    return batched


def _payloads(n):
    return [bytes([k + 1]) * (40 + k % 50) for k in range(n)]


@pytest.mark.parametrize("size", [255, 1000, 7])
@pytest.mark.parametrize("back", [0, 1, 2, 3, 4, 5, 6])
def test_rings_not_a_multiple_of_four_wrap_inside_a_batch(size, back):
    """Starting ``back`` slots before the end of the ring, in lap 1: the
    slots before the end the one-slot way where four do not fit, then
    batches in lap 0; every packet where the guest put its buffer."""
    base = (size - back) % size | 0x8000
    n = min(12, size)  # a ring holds no more than size buffers
    payloads = _payloads(n)
    _, stats, last_avail, left = _batched(size, base, V1, ["good"] * n, payloads)
    assert (stats["packets"], stats["chains"], left) == (n, n, 0)
    assert last_avail == _slot(size, base, n)[0] | _slot(size, base, n)[1] << 15
    for k, data in enumerate(payloads):
        slot, lap = _slot(size, base, k)
        assert _used(slot) == (12 + len(data), 500 + k, (AVAIL | USED if lap else 0) | WRITE)
        assert MEM.read(BUFFERS + BUFFER_LEN * k + 12, len(data)) == data


# kind of the second of ten slots -> the counter that names it.
HOSTILE = {
    "unmapped": "bad_addr",
    "indirect": "bad_indirect",  # INDIRECT not negotiated
    "readable": "bad_direction",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("size", [255, 1000])
def test_a_hostile_slot_in_a_batch_is_returned_empty_and_counted(kind, size):
    """Ten slots for nine packets, the second slot bad, at the end of the
    ring: the first packet goes alone, the bad slot is handed back with
    length 0 and counted, the other eight (batches, past the wrap) each
    in their buffer; nothing written to the bad slot's buffer."""
    base = (size - 2) | 0x8000
    kinds = ["good", kind] + ["good"] * 8
    payloads = _payloads(9)
    _, stats, _, left = _batched(size, base, V1, kinds, payloads)
    assert stats[HOSTILE[kind]] == 1
    assert (stats["packets"], left, stats["chains"]) == (9, 0, 10)
    slot, lap = _slot(size, base, 1)
    assert _used(slot) == (0, 501, AVAIL | USED if lap else 0)
    assert MEM.read(BUFFERS + BUFFER_LEN, BUFFER_LEN) == bytes(BUFFER_LEN)
    got = [k for k in range(10) if k != 1]
    for data, k in zip(payloads, got, strict=True):
        assert MEM.read(BUFFERS + BUFFER_LEN * k + 12, len(data)) == data


def test_a_short_slot_in_a_batch_joins_the_next_one_with_mergeable_buffers():
    """With MRG_RXBUF a 20-byte buffer in the middle of four carries the
    header and the start of its packet, the next buffer the rest
    (num_buffers 2); the batches go on after them."""
    size, base = 255, 0x8000 | 100
    kinds = ["good", "short"] + ["good"] * 7
    payloads = _payloads(8)
    _, stats, _, left = _batched(size, base, V1_MRG, kinds, payloads)
    assert (stats["packets"], stats["chains"], left) == (8, 9, 0)
    second = payloads[1]
    assert _used(101) == (20, 501, AVAIL | USED | WRITE)
    assert _used(102) == (len(second) - 8, 502, AVAIL | USED | WRITE)
    header = MEM.read(BUFFERS + BUFFER_LEN, 12)
    assert struct.unpack_from("<H", header, 10)[0] == 2  # num_buffers
    assert (MEM.read(BUFFERS + BUFFER_LEN + 12, 8)
            + MEM.read(BUFFERS + 2 * BUFFER_LEN, len(second) - 8)) == second


@pytest.mark.parametrize("kind, first_part", [("chained", 4), ("chained_whole", None)])
def test_a_chain_in_a_batch_is_one_buffer_of_two_slots(kind, first_part):
    """A writable slot with NEXT and the good slot after it are one chain
    (buffer id the last slot's), whether its first slot is too short for
    the packet (16 bytes) or holds all of it: the packet goes into the
    chain, the next packet into the slot after."""
    size, base = 1000, 0x8000 | 996
    kinds = ["good", kind] + ["good"] * 7
    payloads = _payloads(8)
    _, stats, _, left = _batched(size, base, V1, kinds, payloads)
    assert (stats["packets"], stats["chains"], left) == (8, 8, 0)
    second = payloads[1]
    assert _used(997) == (12 + len(second), 502, AVAIL | USED | WRITE)
    if first_part is None:
        assert MEM.read(BUFFERS + BUFFER_LEN + 12, len(second)) == second
    else:
        assert (MEM.read(BUFFERS + BUFFER_LEN + 12, first_part)
                + MEM.read(BUFFERS + 2 * BUFFER_LEN, len(second) - first_part)) == second
    assert MEM.read(BUFFERS + 3 * BUFFER_LEN + 12, len(payloads[2])) == payloads[2]


def test_a_chain_into_a_slot_not_yet_given_ends_the_batch_run():
    """The last slot offered has NEXT into a slot the driver has not made
    available: bad_chain, handed back empty; the batch before it went."""
    size, base = 255, 0x8000
    kinds = ["good"] * 4 + ["chained"]
    q = _run(size, base, V1, kinds, _payloads(6), 1000)
    _, stats, last_avail, left = q
    assert (stats["packets"], stats["bad_chain"], stats["chains"], left) == (4, 1, 5, 2)
    assert _used(4) == (0, 504, AVAIL | USED)
    assert last_avail == 0x8000 | 5


# (driver area flags, off_wrap as (slot, lap), event_idx) -> interrupt after
# eight packets from slot 250 of lap 1 on a 255-slot ring (slots 250..254
# in lap 1, 0..2 in lap 0).
EVENTS = [
    ((lib.PK_EVENT_ENABLE, (0, 0)), False, 1),
    ((lib.PK_EVENT_DISABLE, (0, 0)), False, 0),
    ((lib.PK_EVENT_DESC, (252, 1)), True, 1),   # inside the first batch
    ((lib.PK_EVENT_DESC, (1, 0)), True, 1),     # inside the batch past the wrap
    ((lib.PK_EVENT_DESC, (2, 0)), True, 1),     # the last slot written
    ((lib.PK_EVENT_DESC, (3, 0)), True, 0),     # the next slot: not yet
    ((lib.PK_EVENT_DESC, (252, 0)), True, 0),   # a lap ahead
    ((lib.PK_EVENT_DESC, (3, 0)), False, 1),    # DESC without EVENT_IDX: not trusted
]


@pytest.mark.parametrize("event, event_idx, want", EVENTS)
def test_event_suppression_is_decided_once_over_the_batches_of_a_call(event, event_idx,
                                                                     want):
    size, base, n = 255, 0x8000 | 250, 8
    _ring(size, base, ["good"] * n)
    flags, (slot, lap) = event
    q, s = _start(size, base, V1_EVENT_IDX if event_idx else V1, (slot | lap << 15, flags))
    inp = Link("events")
    for data in _payloads(n):
        inp.transmit(packet.from_bytes(data))
    assert lib.pd_rx(q, inp.c, 1000) == n
    assert (q.interrupt, s.interrupts) == (want, want)
    assert lib.pd_rx(q, inp.c, 1000) == 0  # nothing written: no interrupt
    assert (q.interrupt, s.interrupts) == (0, want)
    inp.drain()
