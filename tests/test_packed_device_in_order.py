"""VIRTIO_F_IN_ORDER on the guest's transmit ring (packed_device.c, pd_tx
with PD_F_IN_ORDER): a batch of chains is handed back as ONE used
descriptor, at the batch's first slot, with that slot's wrap counter and
the buffer id of the batch's last chain; the slots after it are not
written, and the used position skips the whole batch. The driver here is
Python reading the ring as an in-order driver does (DPDK's virtio PMD:
from its used position, the chains it made available, in order, up to
and including the one whose id the used descriptor names).

Ring sizes 7, 255 and 1000 (not powers of two, so a batch meets the end
of the ring at odd places), chains of one, two and three slots and of an
indirect table, bad chains inside a batch, event suppression with and
without RING_EVENT_IDX, and a queue stopped and restarted in the middle
(GET_VRING_BASE / SET_VRING_BASE). Guest memory sits between guard pages.

Layout: the ring in region 1, the event areas after it; chain k's
buffers in region 0 at 256 * k: header (12 bytes), frame (60 bytes) at
+16, indirect table at +128."""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass

import pytest
from guarded_memory import GPA, REGION, GuardedMemory
from helpers import drain, fill
from packed_pair import PackedPair

from snabbpy.core import packet
from snabbpy.core.link import Link
from snabbpy.core.native import ffi, lib

MEM = GuardedMemory()
RING = GPA[1]
DRIVER, DEVICE = GPA[1] + 16 * 1024, GPA[1] + 16 * 1024 + 4
AVAIL, USED, WRAP = lib.PK_DESC_F_AVAIL, lib.PK_DESC_F_USED, 0x8000
NEXT, WRITE, INDIRECT = lib.PK_DESC_F_NEXT, lib.PK_DESC_F_WRITE, lib.PK_DESC_F_INDIRECT
BASE_FLAGS = lib.DR_F_VERSION_1 | lib.DR_F_INDIRECT
IN_ORDER = BASE_FLAGS | lib.PD_F_IN_ORDER
FRAME, HDR = 60, 12
UNMAPPED = GPA[1] + REGION + 4096
#: Ring slots each kind of chain takes.
SLOTS = {"one": 1, "two": 2, "three": 3, "indirect": 1,
         "unmapped": 1, "write": 1, "bad_table": 1}
#: The counter a bad kind of chain lands in.
BAD = {"unmapped": "bad_addr", "write": "bad_direction", "bad_table": "bad_indirect"}


def advance(pos: int, n: int, size: int) -> int:
    """Ring position (slot | wrap << 15) n slots after pos."""
    slot, wrap = (pos & 0x7FFF) + n, pos >> 15
    while slot >= size:
        slot, wrap = slot - size, wrap ^ 1
    return slot | wrap << 15


def frame(k: int) -> bytes:
    """The frame of chain k: 60 bytes that name it."""
    return bytes([k % 251 + 1]) * (FRAME - 2) + struct.pack("<H", k)


@dataclass
class Chain:
    """A chain the driver made available: its id, first position, slots."""

    id: int
    pos: int
    slots: int
    kind: str


class Driver:
    """The guest's side of a size-slot TX ring from position ``pos``: makes
    chains available and reads back the used descriptors in order."""

    def __init__(self, size: int, pos: int) -> None:
        self.size, self.avail, self.used = size, pos, pos
        self.pending: list[Chain] = []
        self.count = 0

    def _slot(self, pos: int, addr: int, length: int, id_: int, low: int) -> None:
        mark = AVAIL if pos & WRAP else USED
        MEM.write(RING + 16 * (pos & 0x7FFF), struct.pack("<QIHH", addr, length, id_, low | mark))

    def post(self, kinds) -> list[Chain]:
        """Chains of ``kinds`` (see SLOTS) made available, ids 500 + k."""
        posted = []
        for kind in kinds:
            k = self.count
            self.count += 1
            buf, id_ = GPA[0] + 256 * (k % 256), 500 + k
            MEM.write(buf, bytes(HDR))
            MEM.write(buf + 16, frame(k))
            parts = {"one": [(buf, 0)], "two": [(buf, 0), (buf + 16, 0)],
                     "three": [(buf, 0), (buf + 16, 0), (buf + 46, 0)],
                     "indirect": [(buf + 128, INDIRECT)], "unmapped": [(UNMAPPED, 0)],
                     "write": [(buf, WRITE)], "bad_table": [(buf + 128, INDIRECT)]}[kind]
            lengths = {"one": [HDR + FRAME], "two": [HDR, FRAME],
                       "three": [HDR, 30, 30], "indirect": [32], "unmapped": [HDR + FRAME],
                       "write": [HDR + FRAME], "bad_table": [32]}[kind]
            if kind == "one":  # header and frame in one buffer: the frame right after
                MEM.write(buf + HDR, frame(k))
            if kind in ("indirect", "bad_table"):
                inner = INDIRECT if kind == "bad_table" else 0
                MEM.write(buf + 128, struct.pack("<QIHHQIHH", buf, HDR, 0, inner,
                                                 buf + 16, FRAME, 0, 0))
            chain = Chain(id_, self.avail, len(parts), kind)
            for i, ((addr, low), length) in enumerate(zip(parts, lengths, strict=True)):
                more = NEXT if i < len(parts) - 1 else 0
                self._slot(advance(self.avail, i, self.size), addr, length, id_, low | more)
            self.avail = advance(self.avail, len(parts), self.size)
            self.pending.append(chain)
            posted.append(chain)
        return posted

    def reclaim(self) -> list[int]:
        """Reads used descriptors as an in-order driver: at its used
        position a used descriptor names the last chain of a batch; every
        chain up to it is done, the next one starts after them. Returns
        the positions of the used descriptors read."""
        read = []
        while self.pending:
            length, id_, flags = used(self.used)
            wrap = self.used >> 15
            if bool(flags & AVAIL) != bool(wrap) or bool(flags & USED) != bool(wrap):
                break
            assert length == 0 and not flags & WRITE
            assert id_ in [c.id for c in self.pending], f"used id {id_} names no chain"
            read.append(self.used)
            while True:
                c = self.pending.pop(0)
                assert c.pos == self.used
                self.used = advance(self.used, c.slots, self.size)
                if c.id == id_:
                    break
        return read


def used(pos: int) -> tuple[int, int, int]:
    """(len, id, flags) of the descriptor at ring position ``pos``."""
    return struct.unpack("<QIHH", MEM.read(RING + 16 * (pos & 0x7FFF), 16))[1:]


def ring_image(size: int) -> list[bytes]:
    return [MEM.read(RING + 16 * i, 16) for i in range(size)]


def start(size: int, base: int, flags: int, event=(0, lib.PK_EVENT_ENABLE)):
    q, s = ffi.new("struct pd_queue *"), ffi.new("struct dr_stats *")
    MEM.write(DRIVER, struct.pack("<HH", *event))
    assert lib.pd_queue_start(q, MEM.c, s, size, RING, DRIVER, DEVICE, base, flags) == 0
    return q, s


def fresh(size: int, base: int) -> Driver:
    for gpa in GPA:
        MEM.write(gpa, bytes(REGION))
    return Driver(size, base)


def take(q, max_packets: int = 1000) -> list[bytes]:
    """pd_tx once; the frames it delivered (freed)."""
    out, before = Link("in-order"), packet.in_use()
    n = lib.pd_tx(q, out.c, max_packets)
    frames = []
    for _ in range(n):
        p = out.receive()
        frames.append(packet.to_bytes(p))
        packet.free(p)
    assert out.empty()
    assert packet.in_use() == before
    return frames


def mix(n: int) -> list[str]:
    return list(itertools.islice(itertools.cycle(["one", "two", "indirect", "three"]), n))


def run_batch(size: int, base: int, kinds, flags=IN_ORDER, max_packets: int = 1000):
    """Posts ``kinds`` from ``base``, runs one pd_tx; (driver, queue,
    counters, frames, ring before, chains)."""
    driver = fresh(size, base)
    chains = driver.post(kinds)
    before = ring_image(size)
    q, s = start(size, base, flags)
    frames = take(q, max_packets)
    return driver, q, s, frames, before, chains


def batches(chains: list[Chain]) -> list[list[Chain]]:
    """The chains of one pd_tx call grouped as it hands them back."""
    return [chains[i:i + lib.PD_BATCH] for i in range(0, len(chains), lib.PD_BATCH)]


def assert_written_only(size: int, before: list[bytes], positions) -> None:
    """Every ring slot but those at ``positions`` is as the driver wrote it."""
    written = {p & 0x7FFF for p in positions}
    after = ring_image(size)
    changed = {i for i in range(size) if after[i] != before[i]}
    assert changed <= written, f"slots {sorted(changed - written)} written inside a batch"


CASES = [(7, back, mix(4)) for back in (1, 2, 3, 6)] \
    + [(size, back, mix(40)) for size in (255, 1000) for back in (1, 2, 3, 5, 31)]


@pytest.mark.parametrize("size, back, kinds", CASES)
def test_a_batch_is_one_used_descriptor_at_its_first_slot(size, back, kinds):
    """Starting ``back`` slots before the end of the ring in lap 1: each
    batch of PD_BATCH chains (the last one shorter) is one descriptor at
    its first chain's slot, with that slot's wrap counter and the id of
    its last chain; nothing else in the ring is written; every frame out
    in order; the used position skipped forward to where the walk stands."""
    base = (size - back) | WRAP
    driver, q, s, frames, before, chains = run_batch(size, base, kinds)
    assert frames == [frame(c.id - 500) for c in chains]
    assert (s.packets, s.chains) == (len(chains), len(chains))
    end = advance(base, sum(c.slots for c in chains), size)
    assert q.last_avail == q.used_idx == end
    heads = []
    for batch in batches(chains):
        first = batch[0].pos
        lap = AVAIL | USED if first & WRAP else 0
        assert used(first) == (0, batch[-1].id, lap)
        heads.append(first)
    assert_written_only(size, before, heads)
    assert driver.reclaim() == heads and driver.used == end and not driver.pending
    assert lib.pd_queue_stop(q) == end | end << 16


def test_without_in_order_every_chain_has_its_used_descriptor():
    """The same ring without PD_F_IN_ORDER (what a driver that did not
    negotiate IN_ORDER gets): one used descriptor per chain, at its head."""
    size, base = 255, 250 | WRAP
    driver, q, s, frames, before, chains = run_batch(size, base, mix(40), flags=BASE_FLAGS)
    for c in chains:
        assert used(c.pos) == (0, c.id, AVAIL | USED if c.pos & WRAP else 0)
    assert driver.reclaim() == [c.pos for c in chains]


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("where", [0, 3, 6])
def test_a_bad_chain_in_a_batch_is_counted_and_joins_it(bad, where):
    """A bad chain (first, in the middle, last of seven) is counted by
    reason and handed back with the others: still one used descriptor,
    the id of the batch's last chain even when that one is the bad one;
    the good frames out in order; the driver reclaims all seven."""
    size, base = 255, 252 | WRAP
    kinds = mix(7)
    kinds[where] = bad
    driver, q, s, frames, before, chains = run_batch(size, base, kinds)
    good = [c for c in chains if c.kind not in BAD]
    assert frames == [frame(c.id - 500) for c in good]
    assert getattr(s, BAD[bad]) == 1 and (s.packets, s.chains) == (6, 7)
    assert used(base) == (0, chains[-1].id, AVAIL | USED)
    assert_written_only(size, before, [base])
    assert driver.reclaim() == [base] and not driver.pending


def test_a_chain_cut_short_ends_the_batch_with_its_id():
    """The last chain's NEXT leads to a slot the driver has not made
    available: bad_chain, taken as far as it goes (one slot); the batch's
    descriptor names it, and the used position stands after that slot."""
    size, base = 7, 5 | WRAP
    driver = fresh(size, base)
    chains = driver.post(["one", "two", "two"])
    cut = advance(base, 4, size)  # the last chain's second slot: marked as not given
    MEM.write(RING + 16 * (cut & 0x7FFF) + 14, struct.pack("<H", USED if cut & WRAP else AVAIL))
    q, s = start(size, base, IN_ORDER)
    assert len(take(q)) == 2
    assert (s.bad_chain, s.chains) == (1, 3)
    assert q.used_idx == q.last_avail == cut
    assert used(base) == (0, chains[-1].id, AVAIL | USED)


@pytest.mark.parametrize("flags", [IN_ORDER, BASE_FLAGS])
@pytest.mark.parametrize("event, want", [
    ((0, lib.PK_EVENT_ENABLE), 1),
    ((0, lib.PK_EVENT_DISABLE), 0),
])
def test_the_driver_area_decides_the_interrupt(flags, event, want):
    size, base = 255, 250 | WRAP
    driver = fresh(size, base)
    driver.post(mix(10))
    q, s = start(size, base, flags, event)
    take(q)
    assert q.interrupt == want and s.interrupts == want


@pytest.mark.parametrize("flags", [IN_ORDER | lib.DR_F_EVENT_IDX,
                                   BASE_FLAGS | lib.DR_F_EVENT_IDX])
@pytest.mark.parametrize("chain, want", [(1, 1), (4, 1), (9, 1), (10, 0)])
def test_an_event_inside_a_batch_is_passed_by_the_skip(flags, chain, want):
    """RING_EVENT_IDX: the driver asks to hear of the slot of chain
    ``chain`` of ten (their slots are not written: they are inside the
    batch, the fifth past the end of the ring; "ten" is the slot after
    the last chain, where the next used descriptor will go): skipping
    over the batch passes a slot inside it as ten used descriptors would,
    with or without in-order."""
    size, base = 255, 250 | WRAP
    driver = fresh(size, base)
    chains = driver.post(mix(10))
    off_wrap = chains[chain].pos if chain < 10 else driver.avail
    q, s = start(size, base, flags, (off_wrap, lib.PK_EVENT_DESC))
    take(q)
    assert q.interrupt == want


@pytest.mark.parametrize("size, base", [(7, 3 | WRAP), (255, 253 | WRAP), (1000, 998)])
def test_a_queue_stopped_between_batches_resumes_where_the_skip_ended(size, base):
    """GET_VRING_BASE after a batch of three of five chains (pd_tx's max):
    the ring state has the skipped-forward used position in both halves;
    restarted there (SET_VRING_BASE), the device hands back the last two
    as one descriptor at the fourth chain's slot, in its own lap; then the
    driver reuses the ring and a third queue life takes its chains too."""
    driver = fresh(size, base)
    chains = driver.post(["one", "two", "one", "indirect", "one"])
    q, s = start(size, base, IN_ORDER)
    assert len(take(q, max_packets=3)) == 3
    state = lib.pd_queue_stop(q)
    mid = chains[3].pos
    assert state == mid | mid << 16
    assert driver.reclaim() == [base] and driver.used == mid
    q, s = start(size, state, IN_ORDER)
    assert take(q) == [frame(c.id - 500) for c in chains[3:]]
    assert used(mid) == (0, chains[4].id, AVAIL | USED if mid & WRAP else 0)
    assert driver.reclaim() == [mid] and not driver.pending
    state = lib.pd_queue_stop(q)
    again = driver.post(["two", "one", "three"])
    q, s = start(size, state, IN_ORDER)
    assert take(q) == [frame(c.id - 500) for c in again]
    assert driver.reclaim() == [again[0].pos] and not driver.pending
    assert q.used_idx == q.last_avail == driver.avail


# -- both ends in-order: vguest's driver ring (packed_driver.c) ------------


def is_used(pair, pos: int) -> bool:
    """Does the guest's TX ring hold a used descriptor at ``pos`` (its lap)?"""
    raw = ffi.buffer(ffi.cast("uint8_t *", pair.tx.desc_address + 16 * (pos & 0x7FFF)), 16)
    flags = struct.unpack("<QIHH", bytes(raw))[3]
    wrap = bool(pos & WRAP)
    return bool(flags & AVAIL) == wrap and bool(flags & USED) == wrap


def echo_laps(pair, laps: int, batch: int, size: int = 60) -> None:
    """``laps`` rounds of ``batch`` packets from the guest's TX ring to its
    RX ring through the device, every one intact and reclaimed."""
    for lap in range(laps):
        payloads = [lap.to_bytes(4, "big") * (size // 4) + bytes([i]) for i in range(batch)]
        to_device, got, out = Link(), Link(), Link()
        fill(to_device, payloads)
        assert pair.tx.transmit(to_device.c) == batch
        first = pair.dev_tx.used_idx
        assert pair.take(got) == batch
        assert not is_used(pair, advance(first, 1, pair.tx.size))  # inside the batch
        assert is_used(pair, first)
        assert pair.tx.reclaim() == batch
        pair.rx.refill()
        assert pair.give(got) == batch
        assert pair.rx.receive(out.c) == batch
        assert drain(out) == payloads


@pytest.mark.parametrize("size, batch", [(8, 7), (13, 5), (255, 40), (256, 200)])
def test_vguest_in_order_reclaims_each_batch_from_one_descriptor(size, batch, no_leaks):
    """Many laps of rings of every shape, batches ending mid-lap and
    crossing the end of the ring (wrap counters), more than PD_BATCH
    chains a call: the driver reclaims every chain from the device's one
    used descriptor a batch, and both ends stand at the same slot."""
    pair = PackedPair(size, in_order=True)
    echo_laps(pair, 3 * 65536 // size // batch // 8 + 3, batch)
    assert pair.dev_tx.last_avail == pair.tx.c.avail_pos == pair.dev_tx.used_idx
    assert pair.counters(1)["chains"] == pair.counters(1)["packets"]
    pair.close()


@pytest.mark.parametrize("options", [{"event_idx": True}, {"mrg_rxbuf": False,
                                                          "rx_buffer_size": 10240}])
def test_vguest_in_order_with_event_idx_and_without_merged_buffers(options, no_leaks):
    pair = PackedPair(64, in_order=True, **options)
    echo_laps(pair, 40, 50)
    pair.close()
