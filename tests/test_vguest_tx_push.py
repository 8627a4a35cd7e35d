"""The transmit queue's one call per breath (``push``: reclaim, then
transmit from the link in rounds of up to 32 packets, the first
descriptor of a round made available last), on packed and split rings
against the device rings VhostUser runs, in one process: rings of odd
sizes over many laps with rounds straddling the end of the ring, every
packet arriving once and in order; a hostile device's used descriptors
in the middle of a batch counted and never followed; the kick asked for
exactly when the device wants one."""

from __future__ import annotations

import random
import struct

import pytest
from helpers import drain, fill
from packed_pair import PackedPair
from test_virtq_device_ring import pair as split_pair

from snabbpy.core import packet
from snabbpy.core.link import MAX_PACKETS, Link
from snabbpy.core.native import ffi, lib

WRAP = lib.PK_WRAP
USED = lib.PK_DESC_F_AVAIL | lib.PK_DESC_F_USED


def numbered(seq: int) -> bytes:
    """Frame ``seq``: its number, then a length that varies with it."""
    return struct.pack("<I", seq) + bytes([seq & 0xFF]) * (56 + seq % 40)


def laps(push, take, size: int, rounds: int, seed: int) -> int:
    """Pushes random numbers of frames (the device taking random numbers
    in between), checks every frame comes out once and in order, and
    returns how many went."""
    rng = random.Random(seed)
    link, got = Link(), Link()
    sent = seen = 0
    for _ in range(rounds):
        n = rng.randint(0, MAX_PACKETS - link.nreadable())
        fill(link, [numbered(sent + i) for i in range(n)])
        sent += n
        push(link)
        take(got, rng.randint(0, size + 40))
        for frame in drain(got):
            assert frame == numbered(seen)
            seen += 1
    while seen < sent:  # the rest: the link drains as the ring frees
        push(link)
        assert take(got, 1 << 20) or link.nreadable() == 0
        for frame in drain(got):
            assert frame == numbered(seen)
            seen += 1
    return sent


@pytest.mark.parametrize("size", [1, 3, 4, 255, 256, 1000])
def test_packed_push_sends_every_frame_once_in_order_across_laps(size, no_leaks):
    pp = PackedPair(size)
    wraps = []

    def push(link):
        before = pp.tx.c.avail_pos
        assert pp.tx.push(link.c) is False  # the device polls: no kick
        wraps.append((pp.tx.c.avail_pos ^ before) & WRAP)

    sent = laps(push, lambda out, n: pp.take(out, n), size, 300, size)
    pp.tx.push(None)  # reclaims only
    assert pp.tx.in_flight() == 0
    assert pp.tx.stats()["packets"] == sent
    assert sum(1 for w in wraps if w) > 10  # batches crossed the end of the ring
    assert pp.tx.stats()["bad_id"] == pp.tx.stats()["bad_len"] == 0
    pp.close()


@pytest.mark.parametrize("size", [1, 4, 256])
def test_split_push_sends_every_frame_once_in_order_across_laps(size, no_leaks):
    dev, device = split_pair(size)

    def push(link):
        assert dev.tx.push(link.c) is False

    def take(out, n):
        got = Link()
        moved = device.take(got)
        for frame in drain(got):  # the split device takes all: keep order
            fill(out, [frame])
        return moved

    sent = laps(push, take, size, 200, size)
    dev.tx.push(None)
    assert dev.tx.in_flight() == 0
    assert dev.tx.stats()["packets"] == sent
    dev.close()


def write_used(pp: PackedPair, slot: int, wrap: bool, buffer_id: int) -> None:
    """What a device writes to hand a buffer back at ``slot``."""
    d = ffi.cast("struct pk_desc *", pp.tx.desc_address) + slot
    d.id, d.len = buffer_id, 0
    d.flags = USED if wrap else 0


def buffer_ids(pp: PackedPair, n: int) -> list[int]:
    """The buffer ids of the first n slots, as the driver wrote them."""
    d = ffi.cast("struct pk_desc *", pp.tx.desc_address)
    return [d[i].id for i in range(n)]


def test_hostile_ids_in_the_middle_of_a_batch_are_counted_never_followed(no_leaks):
    size = 255
    pp = PackedPair(size)
    link = Link()
    fill(link, [numbered(i) for i in range(100)])
    assert pp.tx.push(link.c) is False
    ids = buffer_ids(pp, 100)
    # The device hands back 40: a good one, then one id out of range, one
    # named twice, one never given, then good ones again.
    bogus = [ids[0], 4000, ids[0], ids[99] ^ 0x7000] + ids[4:40]
    for slot, buffer_id in enumerate(bogus):
        write_used(pp, slot, True, buffer_id)
    fill(link, [numbered(100 + i) for i in range(10)])
    assert pp.tx.push(link.c) is False
    s = pp.tx.stats()
    assert s["bad_id"] == 3
    assert pp.tx.in_flight() == 100 + 10 - 37  # 37 freed: ids[0], ids[4:40]
    assert pp.tx.c.num_free + pp.tx.in_flight() == size
    freed = pp.close()
    assert freed == 73
    assert packet.double_frees() == 0


def test_a_round_wrapping_the_ring_is_made_available_whole(no_leaks):
    """A round straddling the end: the slots after the end carry the flipped
    wrap counter, and the device takes them all, in order."""
    size = 255
    pp = PackedPair(size)
    link, got = Link(), Link()
    fill(link, [numbered(i) for i in range(250)])
    pp.tx.push(link.c)
    assert pp.take(got) == 250
    drain(got)
    fill(link, [numbered(250 + i) for i in range(20)])  # slots 250..254, then 0..14
    pp.tx.push(link.c)
    d = ffi.cast("struct pk_desc *", pp.tx.desc_address)
    assert d[254].flags & lib.PK_DESC_F_AVAIL  # first lap: wrap counter 1
    assert d[0].flags & lib.PK_DESC_F_USED and not d[0].flags & lib.PK_DESC_F_AVAIL
    assert pp.take(got) == 20
    assert drain(got) == [numbered(250 + i) for i in range(20)]
    pp.tx.push(None)
    assert pp.tx.in_flight() == 0
    pp.close()


@pytest.mark.parametrize("event_idx", [False, True])
def test_push_asks_for_a_kick_exactly_when_the_device_wants_one(event_idx, no_leaks):
    pp = PackedPair(16, event_idx=event_idx)
    link = Link()
    dev_event = ffi.cast("struct pk_event *", pp.tx.device_address)
    dev_event.flags = lib.PK_EVENT_DISABLE
    fill(link, [numbered(0)])
    assert pp.tx.push(link.c) is False
    dev_event.flags = lib.PK_EVENT_ENABLE
    fill(link, [numbered(1)])
    assert pp.tx.push(link.c) is True
    assert pp.tx.push(link.c) is False  # nothing new: nothing to kick for
    if event_idx:
        dev_event.flags, dev_event.off_wrap = lib.PK_EVENT_DESC, 5 | WRAP
        fill(link, [numbered(2)])
        assert pp.tx.push(link.c) is False  # slot 2: not yet at 5
        fill(link, [numbered(i) for i in range(3, 6)])
        assert pp.tx.push(link.c) is True  # slots 3..5 pass slot 5
    assert pp.tx.stats()["notifications"] == 1 + event_idx
    pp.close()


def test_push_leaves_what_does_not_fit_on_the_link(no_leaks):
    pp = PackedPair(3)
    link = Link()
    fill(link, [numbered(i) for i in range(10)])
    pp.tx.push(link.c)
    assert pp.tx.in_flight() == 3 and link.nreadable() == 7
    pp.tx.push(link.c, 0)  # max 0: reclaims only
    assert link.nreadable() == 7
    assert pp.close() == 3
    link.drain()
