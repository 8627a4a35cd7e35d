"""vguest's packed rings with VIRTIO_F_IN_ORDER: buffer ids are the slots,
and a device may hand back a whole batch with one used descriptor at the
batch's first slot naming its last buffer. Against a device written in
the test (in_order_device.py): frames over many laps of odd-sized rings
with batches straddling the end, receive batches of merged buffers, and a
hostile device's ids that name slots not out, counted once and never
followed. (Against testpmd's net_vhost, which writes in-order batches:
tests/test_packed_dpdk.py.)"""

from __future__ import annotations

import random
import struct

import pytest
from helpers import drain, fill
from in_order_device import WRAP, InOrderDevice

from snabbpy.apps.vguest.device import negotiated, wanted_features
from snabbpy.core.link import MAX_PACKETS, Link
from snabbpy.lib.virtio import Feature, feature_mask
from snabbpy.lib.virtio.packed_virtq import PackedVirtq


def numbered(seq: int) -> bytes:
    """Frame ``seq``: its number, then a length that varies with it."""
    return struct.pack("<I", seq) + bytes([seq & 0xFF]) * (56 + seq % 40)


def hand_back(device: InOrderDevice, pending: list, rng: random.Random) -> int:
    """Hands back a random prefix of ``pending`` in random batches; returns
    how many batches ran past the end of the ring."""
    done = rng.randint(0, len(pending))
    wrapped = 0
    while done:
        k = rng.randint(1, done)
        first = device.used & (WRAP - 1)
        wrapped += first + k > device.vq.size
        device.use(pending[:k])
        del pending[:k]
        done -= k
    return wrapped


@pytest.mark.parametrize("size", [1, 3, 7, 255, 256, 1000])
def test_transmit_batches_handed_back_with_one_descriptor(size, no_leaks):
    vq = PackedVirtq(size, in_order=True)
    device = InOrderDevice(vq)
    rng = random.Random(size)
    link, pending = Link(), []
    sent = seen = wrapped = 0
    for _ in range(400):
        n = rng.randint(0, MAX_PACKETS - link.nreadable())
        fill(link, [numbered(sent + i) for i in range(n)])
        sent += n
        vq.push(link.c)
        first = device.avail & (WRAP - 1)
        taken = device.take(rng.randint(0, size))
        assert [t[0] for t in taken] == [(first + i) % size for i in range(len(taken))]
        for frame in device.transmitted(taken):
            assert frame == numbered(seen)
            seen += 1
        pending += taken
        wrapped += hand_back(device, pending, rng)
    if pending:
        device.use(pending)
    for _ in range(MAX_PACKETS + size):  # the rest, as the ring frees
        if not (link.nreadable() or vq.in_flight()):
            break
        vq.push(link.c)
        taken = device.take(size)
        for frame in device.transmitted(taken):
            assert frame == numbered(seen)
            seen += 1
        if taken:
            device.use(taken)
        vq.push(None)
    assert seen == sent and vq.stats()["packets"] == sent
    assert vq.stats()["bad_id"] == 0 and not vq.broken
    if size > 3:
        assert wrapped > 10  # batches crossed the end of the ring


def test_slots_inside_a_batch_are_never_read():
    vq = PackedVirtq(16, in_order=True)
    device = InOrderDevice(vq)
    link = Link()
    fill(link, [numbered(i) for i in range(6)])
    vq.push(link.c)
    taken = device.take(6)
    device.write_used(device.used, 0xBEEF, 0)  # junk where the batch starts...
    device.write_used(device.ahead(2), 0xBEEF, 0)  # ...and inside it
    device.use(taken)  # the real one, over the first junk
    assert vq.push(None) is False
    assert vq.in_flight() == 0 and vq.stats()["bad_id"] == 0


@pytest.mark.parametrize("bad", ["beyond the ring", "past the slots out", "before the batch"])
def test_an_id_naming_a_slot_not_out_stalls_the_queue_counted_once(bad, no_leaks):
    vq = PackedVirtq(16, in_order=True)
    device = InOrderDevice(vq)
    link = Link()
    fill(link, [numbered(i) for i in range(12)])
    vq.push(link.c)
    first, rest = device.take(4), device.take(8)  # slots 0-3, then 4-11
    device.use(first)
    vq.push(None)
    assert vq.in_flight() == 8
    wrong = {"beyond the ring": 16 + 4, "past the slots out": 12, "before the batch": 3}[bad]
    device.write_used(device.used, wrong, 0)  # at slot 4
    for _ in range(3):
        vq.push(None)
    assert vq.broken and vq.stats()["bad_id"] == 1
    assert "names a slot not given to it" in vq.stall_reason
    assert vq.in_flight() == 8  # nothing freed: the device may still read them
    device.use(rest)  # the device writes that slot again, right
    vq.push(None)
    assert not vq.broken and vq.in_flight() == 0 and vq.stats()["bad_id"] == 1
    assert vq.stall_reason == ""


def test_a_stalled_queue_gives_every_packet_back_when_released(no_leaks):
    vq = PackedVirtq(8, in_order=True)
    device = InOrderDevice(vq)
    link = Link()
    fill(link, [numbered(i) for i in range(5)])
    vq.push(link.c)
    device.take(5)
    device.write_used(device.used, 7, 0)  # slot 7 was never given
    vq.push(None)
    assert vq.broken
    assert vq.release_all() == 5 and not vq.broken


def test_receive_one_descriptor_per_merged_packet_or_per_buffer(no_leaks):
    vq = PackedVirtq(61, in_order=True, mrg_rxbuf=True, rx_buffer_size=256)
    device = InOrderDevice(vq)
    rng = random.Random(61)
    out = Link()
    frames = [bytes([i & 0xFF]) * rng.randint(60, 1400) for i in range(600)]
    got = []
    vq.refill()
    pending = device.take(61)
    for frame in frames:
        if len(pending) < 8:
            vq.receive(out.c)
            got += drain(out)
            vq.refill()
            pending += device.take(61)
        lengths = device.receive_into(pending, frame, merged=True)
        buffers, pending = pending[:len(lengths)], pending[len(lengths):]
        if rng.random() < 0.5:
            device.use(buffers, lengths[-1])  # one for the packet: the others are full
        else:
            for b, n in zip(buffers, lengths, strict=True):
                device.use([b], n)
    vq.receive(out.c)
    got += drain(out)
    assert got == frames
    assert vq.stats()["bad_len"] == vq.stats()["bad_id"] == 0
    vq.release_all()


def test_receive_batch_longer_than_its_buffer_is_dropped_whole(no_leaks):
    vq = PackedVirtq(16, in_order=True, mrg_rxbuf=True, rx_buffer_size=256)
    device = InOrderDevice(vq)
    out = Link()
    vq.refill()
    buffers = device.take(16)
    lengths = device.receive_into(buffers, b"\x01" * 600, merged=True)
    assert len(lengths) == 3
    device.use(buffers[:3], 12 + 256 + 1)  # one byte more than the last buffer holds
    assert vq.receive(out.c) == 0
    assert vq.stats()["bad_len"] == 1 and vq.in_flight() == 13  # all three freed
    assert vq.refill() == 3
    vq.release_all()


def test_in_order_only_with_packed_rings_and_only_when_asked():
    every = feature_mask(Feature.VERSION_1, Feature.RING_PACKED, Feature.IN_ORDER)
    asked = wanted_features(True, False, False, packed=True, in_order=True)
    assert negotiated(every, asked) >> Feature.IN_ORDER & 1
    no_packed = every & ~feature_mask(Feature.RING_PACKED)
    assert not negotiated(no_packed, asked) >> Feature.IN_ORDER & 1
    assert not wanted_features(True, False, False, packed=True) >> Feature.IN_ORDER & 1
    assert not wanted_features(True, False, False, in_order=True) >> Feature.IN_ORDER & 1
