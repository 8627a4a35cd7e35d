"""Hostile rings thrown at device_ring.c: random descriptor tables, avail
rings and addresses. Guest memory sits between PROT_NONE guard pages, so a
single byte read or written outside the memory table kills the test; the
counters must account for every chain and every packet."""

import ctypes
import mmap
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from snabbpy.core import packet
from snabbpy.core.link import Link
from snabbpy.core.native import ffi, lib

PAGE = mmap.PAGESIZE
REGION = 0x10000
GPA = (0x100000, 0x100000 + REGION)  # adjacent for the guest, apart for us
SIZE = 64  # queue size
REASONS = ("bad_index", "bad_addr", "bad_chain", "bad_indirect", "bad_direction",
           "bad_header", "too_long")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


class GuardedMemory:
    """Two guest regions, each with an inaccessible page on both sides."""

    def __init__(self):
        total = 3 * PAGE + 2 * REGION
        self.map = mmap.mmap(-1, total)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self.map))
        self.host = (base + PAGE, base + 2 * PAGE + REGION)
        for guard in (base, base + PAGE + REGION, base + 2 * PAGE + 2 * REGION):
            assert _libc.mprotect(guard, PAGE, 0) == 0
        self.c = ffi.new("struct dr_memory *")
        lib.dr_memory_clear(self.c)
        for gpa, host in zip(GPA, self.host, strict=True):
            assert lib.dr_memory_add(self.c, gpa, gpa, REGION, host) == 0

    def write(self, gpa, data):
        k = 0 if gpa < GPA[1] else 1
        ffi.memmove(ffi.cast("uint8_t *", self.host[k] + gpa - GPA[k]), data, len(data))


MEM = GuardedMemory()
DESC, AVAIL, USED = GPA[0], GPA[0] + 0x1000, GPA[0] + 0x2000  # rings in region 0

# Addresses near every edge of the regions, and far away.
EDGES = [GPA[0] - 16, GPA[0], GPA[0] + 0x3000, GPA[1] - 100, GPA[1] - 12, GPA[1],
         GPA[1] + REGION - 64, GPA[1] + REGION - 1, GPA[1] + REGION, 0, 2**64 - 8]
addresses = st.one_of(st.sampled_from(EDGES), st.integers(GPA[0], GPA[1] + REGION),
                      st.integers(0, 2**64 - 1))
lengths = st.one_of(st.sampled_from([0, 1, 10, 12, 16, 32, 60, 1500, 9000, 10252, 70000]),
                    st.integers(0, 2**32 - 1))
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
