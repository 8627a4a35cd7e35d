"""Both ends of a packed virtqueue against each other in one process:
vguest's driver ring (packed_driver.c) feeding the device ring VhostUser
uses (packed_device.c) over the same memory. Two implementations written
apart, from the spec, must agree: every packet back, intact, over many
laps of the ring (wrap counters), with event suppression honoured."""

from __future__ import annotations

import pytest
from helpers import drain, fill
from packed_pair import FRESH, PackedPair

from snabbpy.core.link import Link
from snabbpy.core.native import lib


def echo_round(pair: PackedPair, payloads: list[bytes]) -> list[bytes]:
    """Guest sends payloads, the device takes them and gives them back."""
    to_device, got, out = Link(), Link(), Link()
    fill(to_device, payloads)
    assert pair.tx.transmit(to_device.c) == len(payloads)
    assert pair.take(got) == len(payloads)
    assert pair.tx.reclaim() == len(payloads)
    pair.rx.refill()
    assert pair.give(got) == len(payloads)
    assert pair.rx.receive(out.c) == len(payloads)
    return drain(out)


@pytest.mark.parametrize("options", [{}, {"mrg_rxbuf": False, "rx_buffer_size": 10240},
                                     {"event_idx": True}])
def test_packets_cross_both_ways(options, no_leaks):
    pair = PackedPair(**options)
    payloads = [bytes([i]) * (60 + i) for i in range(50)]
    assert echo_round(pair, payloads) == payloads
    assert pair.counters(1)["chains"] == 50 and pair.counters(0)["packets"] == 50
    pair.close()


@pytest.mark.parametrize("size", [8, 13, 256])
def test_many_laps_of_the_ring(size, no_leaks):
    """Wrap counters flip each lap on both ends; an odd size too (packed
    rings need no power of two), and batches that end mid-lap."""
    pair = PackedPair(size)
    for lap in range(4 * 65536 // size // 7):
        payloads = [lap.to_bytes(4, "big") * 16 + bytes([i]) for i in range(min(size, 7))]
        assert echo_round(pair, payloads) == payloads
    assert pair.dev_tx.last_avail == pair.tx.c.avail_pos == pair.dev_tx.used_idx
    pair.close()


def test_jumbo_frames_use_merged_buffers(no_leaks):
    pair = PackedPair(64, rx_buffer_size=2048)
    pair.rx.refill()
    jumbo = bytes(range(256)) * 35
    inp, out = Link(), Link()
    fill(inp, [jumbo, jumbo[:3000]])
    assert pair.give(inp) == 2
    assert pair.rx.receive(out.c) == 2
    assert drain(out) == [jumbo, jumbo[:3000]]
    pair.close()


def test_no_buffers_leaves_packets_on_the_link(no_leaks):
    pair = PackedPair(4, rx_buffer_size=2048)
    pair.rx.refill()
    inp, out = Link(), Link()
    fill(inp, [b"x" * 100] * 6)
    assert pair.give(inp) == 4 and inp.nreadable() == 2
    assert pair.counters(0)["no_buffers"] == 1
    assert pair.rx.receive(out.c) == 4
    pair.rx.refill()
    assert pair.give(inp) == 2
    assert pair.rx.receive(out.c) == 2 and len(drain(out)) == 6
    pair.close()


def test_device_interrupts_only_when_the_driver_asks(no_leaks):
    pair = PackedPair(16)
    payloads = [b"a" * 64] * 3
    echo_round(pair, payloads)
    assert pair.dev_tx.interrupt == 0  # vguest polls: its driver area says DISABLE
    pair.tx.c.driver_event.flags = lib.PK_EVENT_ENABLE
    echo_round(pair, payloads)
    assert pair.dev_tx.interrupt == 1
    assert pair.counters(1)["interrupts"] == 1
    pair.close()


def test_event_idx_interrupt_at_the_slot_named(no_leaks):
    pair = PackedPair(16, event_idx=True)
    ev = pair.tx.c.driver_event
    ev.flags = lib.PK_EVENT_DESC
    ev.off_wrap = 0x8000 | 5  # slot 5 of the first lap
    echo_round(pair, [b"a" * 64] * 3)  # used slots 0..2
    assert pair.dev_tx.interrupt == 0
    echo_round(pair, [b"a" * 64] * 3)  # 3..5: passes 5
    assert pair.dev_tx.interrupt == 1
    echo_round(pair, [b"a" * 64] * 12)  # 6..17: wraps, 5 of the first lap is behind
    assert pair.dev_tx.interrupt == 0
    ev.off_wrap = 1  # slot 1 of the second lap (wrap 0)
    echo_round(pair, [b"a" * 64] * 1)  # slot 2 of the second lap: already past 1
    assert pair.dev_tx.interrupt == 0
    pair.close()


def test_driver_kicks_only_when_the_device_asks(no_leaks):
    pair = PackedPair(16, event_idx=True)
    link = Link()
    fill(link, [b"k" * 64] * 2)
    pair.tx.transmit(link.c)
    assert not pair.tx.notify_needed()  # the device area says DISABLE (we poll)
    pair.dev_tx.device_event[0:4] = b"\x00\x00\x00\x00"  # ENABLE
    fill(link, [b"k" * 64])
    pair.tx.transmit(link.c)
    assert pair.tx.notify_needed()
    assert not pair.tx.notify_needed()  # nothing new since
    pair.dev_tx.device_event[0:4] = (0x8000 | 6).to_bytes(2, "little") + b"\x02\x00"
    fill(link, [b"k" * 64] * 2)
    pair.tx.transmit(link.c)  # slots 3, 4
    assert not pair.tx.notify_needed()
    fill(link, [b"k" * 64] * 3)
    pair.tx.transmit(link.c)  # slots 5, 6, 7: passes 6
    assert pair.tx.notify_needed()
    assert pair.tx.stats()["notifications"] == 2
    out = Link()
    assert pair.take(out) == 8 and len(drain(out)) == 8
    pair.tx.reclaim()
    pair.close()


def test_ring_state_survives_a_restart(no_leaks):
    """GET_VRING_BASE / SET_VRING_BASE: the state carries both positions
    and wrap counters, so a device restarted mid-lap (a reconnect) goes on
    where it stopped."""
    pair = PackedPair(8)
    for _ in range(3):
        echo_round(pair, [b"r" * 64] * 5)  # 15 slots: second lap, slot 7
    state = lib.pd_queue_stop(pair.dev_tx)
    assert state == (7 | 7 << 16)  # wrap counters 0 in the second lap
    assert pair.take(Link()) == 0  # stopped
    pair.start(pair.dev_tx, state)
    assert echo_round(pair, [b"s" * 64] * 5) == [b"s" * 64] * 5
    pair.close()
    assert lib.pd_queue_start(pair.dev_tx, pair.mem, pair.stats[1], 8, pair.tx.desc_address,
                              pair.tx.driver_address, pair.tx.device_address, 8,
                              pair.flags) == lib.PD_E_BASE
    assert FRESH & 0x7FFF == 0
