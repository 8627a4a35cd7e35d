"""Packed virtqueues of any size (virtio 1.x 2.8: no power of two needed,
up to 32768), both ends: the position arithmetic both share (pk_advance,
pk_need_event) against a model on absolute positions, then vguest's
driver ring and VhostUser's device ring against each other in one process
over many laps of rings of 1, 3, 100, 255 and 1000 slots, with event
suppression at random slots and the 32-bit ring state handed over (as to a
worker, or across a reconnect) at random points."""

from __future__ import annotations

import random

import pytest
from helpers import drain, fill
from packed_pair import PackedPair

from snabbpy.apps.vhost import handoff
from snabbpy.core.link import Link
from snabbpy.core.native import lib

WRAP = lib.PK_WRAP
ODD_SIZES = [1, 3, 100, 255, 1000]


def pos(a: int, size: int) -> int:
    """The ring position of absolute position ``a`` (the a-th slot ever
    written): slot | wrap counter << 15, the counter 1 in the first lap."""
    lap, slot = divmod(a, size)
    return slot | (WRAP if lap % 2 == 0 else 0)


def need_event(off_wrap: int, old: int, new: int, size: int) -> bool:
    """Model of RING_EVENT_IDX on absolute positions: the side that wrote
    slots old..new-1 passed the slot the other side named."""
    slot = off_wrap & (WRAP - 1)
    laps = range(old // size, max(old, new - 1) // size + 1)
    return any(old <= lap * size + slot < new and pos(lap * size + slot, size) == off_wrap
               for lap in laps)


@pytest.mark.parametrize("size", [*ODD_SIZES, 2, 32767, 32768])
def test_positions_advance_and_wrap_as_the_model_says(size):
    rng = random.Random(size)
    for _ in range(2000):
        a = rng.randrange(4 * size)
        n = rng.randint(0, size)
        assert lib.pk_advance(pos(a, size), n, size) == pos(a + n, size)


@pytest.mark.parametrize("size", [*ODD_SIZES, 2, 32767, 32768])
def test_event_idx_fires_exactly_when_the_named_slot_is_passed(size):
    rng = random.Random(size)
    for _ in range(3000):
        old = rng.randrange(6 * size)
        new = old + rng.randint(0, size)
        event = rng.randrange(max(0, old - size), new + size)  # behind, inside, ahead
        off = pos(event, size)
        got = lib.pk_need_event(lib.PK_EVENT_DESC, off, pos(old, size), pos(new, size), size, 1)
        assert bool(got) == need_event(off, old, new, size), (old, new, event)


def test_enable_and_disable_ignore_the_slot():
    for size in ODD_SIZES:
        a, b = pos(0, size), pos(size, size)  # one whole lap written
        assert lib.pk_need_event(lib.PK_EVENT_ENABLE, 0, a, b, size, 1) == 1
        assert lib.pk_need_event(lib.PK_EVENT_DISABLE, 0, a, b, size, 1) == 0
        assert lib.pk_need_event(lib.PK_EVENT_DESC, 0, a, a, size, 1) == 0  # nothing written
        assert lib.pk_need_event(lib.PK_EVENT_DESC, 0, a, b, size, 0) == 1  # no EVENT_IDX


def hand_over(pair: PackedPair, q) -> int:
    """Stops device queue ``q``, carries its ring state through the handoff
    codec (as a worker's ``stopped`` answer does) and starts it there again."""
    state = lib.pd_queue_stop(q)
    msg = handoff.decode(handoff.encode({"op": "stopped", "index": 1, "base": state}), [])
    pair.start(q, msg["base"])
    return state


@pytest.mark.parametrize("size", ODD_SIZES)
def test_both_ends_lap_odd_rings_many_times(size, no_leaks):
    """Random batches up to a whole ring, 40 laps or 20000 slots (6667 laps
    of the 3-slot ring) whichever is more:
    every packet back intact and in order; interrupts and kicks exactly
    when the slot the other side named is passed; the ring state handed
    over mid-lap now and then comes back where the model says."""
    rng = random.Random(size * 7919)
    pair = PackedPair(size, event_idx=True, rx_buffer_size=2048)
    tx_used = tx_avail = tx_kicked = rx_used = 0  # absolute positions
    to_device, got, back = Link(), Link(), Link()
    seq = 0
    while tx_used < max(40 * size, 20000):
        n = rng.randint(1, size)
        payloads = [(seq + i).to_bytes(4, "big") * (15 + (seq + i) % 7) for i in range(n)]
        seq += n
        # The device names a slot for kicks; the driver one for interrupts.
        kick_at = rng.randrange(max(0, tx_avail - size), tx_avail + 2 * size)
        pair.dev_tx.device_event[0:4] = (pos(kick_at, size).to_bytes(2, "little")
                                         + lib.PK_EVENT_DESC.to_bytes(2, "little"))
        call_at = rng.randrange(max(0, tx_used - size), tx_used + 2 * size)
        pair.tx.c.driver_event.off_wrap = pos(call_at, size)
        pair.tx.c.driver_event.flags = lib.PK_EVENT_DESC

        fill(to_device, payloads)
        assert pair.tx.transmit(to_device.c) == n
        tx_avail += n
        assert pair.tx.notify_needed() == need_event(pos(kick_at, size), tx_kicked, tx_avail,
                                                     size)
        tx_kicked = tx_avail
        assert pair.take(got) == n
        assert pair.dev_tx.interrupt == need_event(pos(call_at, size), tx_used,
                                                   tx_used + n, size)
        tx_used += n
        assert pair.tx.reclaim() == n
        pair.rx.refill()
        assert pair.give(got) == n
        rx_used += n
        assert pair.rx.receive(back.c) == n
        assert drain(back) == payloads
        assert pair.dev_tx.used_idx == pos(tx_used, size) == pair.tx.c.used_pos
        assert pair.dev_rx.used_idx == pos(rx_used, size) == pair.rx.c.used_pos
        if rng.random() < 0.1:  # a worker or a reconnecting frontend takes over
            p = pos(tx_used, size)
            assert hand_over(pair, pair.dev_tx) == p | p << 16
            assert hand_over(pair, pair.dev_rx) & 0xFFFF == pair.dev_rx.last_avail
    assert pair.close() == size - n  # the receive buffers left posted
    assert pair.counters(0)["packets"] == pair.counters(1)["chains"] == seq


@pytest.mark.parametrize("size", [3, 100, 1000])
def test_a_restart_mid_lap_at_every_slot_of_an_odd_ring(size, no_leaks):
    """SET_VRING_BASE at slot s of the second lap (wrap counter 0) for a
    spread of s: the device resumes exactly there, the chains the driver
    makes available next are taken, the lap after flips both counters."""
    for slot in sorted({0, 1, size // 2, size - 1}):
        pair = PackedPair(size, rx_buffer_size=2048)
        link, out = Link(), Link()
        for chunk in (size, slot):  # the ring through one lap, then `slot` slots
            fill(link, [b"p" * 60] * chunk)
            pair.tx.transmit(link.c)
            assert pair.take(out) == chunk
            pair.tx.reclaim()
            drain(out)
        state = lib.pd_queue_stop(pair.dev_tx)
        assert state == (slot | slot << 16)  # second lap: wrap counters 0
        pair.start(pair.dev_tx, state)
        fill(link, [b"q" * 60] * size)
        pair.tx.transmit(link.c)
        assert pair.take(out) == size and len(drain(out)) == size
        assert pair.dev_tx.used_idx == pos(2 * size + slot, size)
        pair.tx.reclaim()
        pair.close()


@pytest.mark.parametrize("size, base", [(1000, 1000 | WRAP), (3, 3), (3, 0x7FFF), (255, 255)])
def test_a_ring_state_naming_a_slot_past_an_odd_ring_is_refused(size, base):
    pair = PackedPair(size)
    assert lib.pd_queue_stop(pair.dev_tx) == WRAP | WRAP << 16
    vq = pair.tx
    err = lib.pd_queue_start(pair.dev_tx, pair.mem, pair.stats[1], size, vq.desc_address,
                             vq.driver_address, vq.device_address, base, pair.flags)
    assert err == lib.PD_E_BASE and not pair.dev_tx.ready
    pair.start(pair.dev_tx, (size - 1) | WRAP)  # the last slot is a slot
    pair.close()


@pytest.mark.parametrize("size", [0, 32769, 65535, 65536, 2**32 - 1])
def test_device_refuses_sizes_outside_1_to_32768(size):
    pair = PackedPair(8)
    vq = pair.tx
    err = lib.pd_queue_start(pair.dev_tx, pair.mem, pair.stats[1], size, vq.desc_address,
                             vq.driver_address, vq.device_address, WRAP, pair.flags)
    assert err == lib.DR_E_SIZE and not pair.dev_tx.ready
    pair.close()
