"""The driver side of the split virtqueue, against the in-process device
model (snabbpy/testing/vguest_model.py): send, receive, merged buffers, notification
rules and a hostile used ring."""

from __future__ import annotations

import struct

import pytest
from helpers import drain, fill

from snabbpy.core.link import Link
from snabbpy.lib.virtio import Feature, UsedFlag, feature_mask
from snabbpy.testing.vguest_model import mem, open_driver


def frames(n: int, size: int = 60) -> list[bytes]:
    """n distinct frames of ``size`` bytes."""
    return [bytes([i % 256]) * size for i in range(n)]


def test_transmit_puts_header_and_frame_in_one_descriptor(no_leaks):
    model, dev = open_driver()
    link = Link()
    fill(link, frames(5))
    assert dev.tx.transmit(link.c) == 5
    sent = model.take_transmitted()
    assert [f for _, f in sent] == frames(5)
    assert all(h == bytes(12) for h, _ in sent)
    assert all(len(model.txq.descriptor(i)) for i in range(5))
    assert dev.tx.reclaim() == 5 and dev.tx.in_flight() == 0
    assert dev.tx.stats()["packets"] == 5
    dev.close()


def test_tx_ring_full_leaves_packets_waiting_on_the_link(no_leaks):
    model, dev = open_driver(size=8)
    link = Link()
    fill(link, frames(20))
    assert dev.tx.transmit(link.c) == 8
    assert link.nreadable() == 12 and link.stats()["txdrop"] == 0
    model.take_transmitted()
    dev.tx.reclaim()
    assert dev.tx.transmit(link.c) == 8
    link.drain()
    dev.close()


def test_legacy_layout_without_any_layout_chains_header_and_data(no_leaks):
    legacy = feature_mask(Feature.NET_MAC)
    model, dev = open_driver(model={"features": legacy, "legacy": True}, mrg_rxbuf=False)
    assert dev.tx.layout.used_offset % 4096 == 0
    link = Link()
    fill(link, frames(3, 100))
    assert dev.tx.transmit(link.c) == 3
    head, chain = model.txq.pop()
    assert [n for _, n, _ in chain] == [10, 100]
    model.txq.last_avail = 0
    assert [f for _, f in model.take_transmitted()] == frames(3, 100)
    # receive: two device-writable descriptors per buffer, 10-byte header
    assert model.rxq.pending() == 8
    model.deliver(b"\xaa" * 70)
    out = Link()
    assert dev.rx.receive(out.c) == 1
    assert drain(out) == [b"\xaa" * 70]
    dev.close()


def test_receive_strips_header_and_refill_keeps_the_ring_full(no_leaks):
    model, dev = open_driver()
    assert model.rxq.pending() == 16
    for f in frames(4, 64):
        model.deliver(f)
    out = Link()
    assert dev.rx.receive(out.c) == 4
    assert drain(out) == frames(4, 64)
    assert dev.rx.refill() == 4 and model.rxq.pending() == 16
    dev.close()


def test_mergeable_buffers_are_joined_into_one_packet(no_leaks):
    model, dev = open_driver(rx_buffer_size=1000)
    jumbo = bytes(range(256)) * 35  # 8960 bytes: 9 buffers of 1000 (+12 header)
    assert model.deliver(jumbo) == 9
    out = Link()
    assert dev.rx.receive(out.c) == 1
    assert drain(out) == [jumbo]
    assert dev.rx.in_flight() == 16 - 9
    dev.close()


def test_merged_packet_waits_until_all_its_buffers_are_used(no_leaks):
    model, dev = open_driver(rx_buffer_size=100)
    model.deliver(b"\x01" * 250)  # 3 buffers
    model.rxq.publish(model.rxq.used_idx - 1)  # only 2 visible so far
    out = Link()
    assert dev.rx.receive(out.c) == 0
    model.rxq.publish()
    assert dev.rx.receive(out.c) == 1
    assert drain(out) == [b"\x01" * 250]
    dev.close()


def test_merged_packet_longer_than_a_packet_is_dropped_and_counted(no_leaks):
    model, dev = open_driver(size=16, rx_buffer_size=1000)
    model.deliver(b"\x02" * 11000)  # 12 buffers, more than 10240 bytes
    model.deliver(b"\x03" * 60)
    out = Link()
    assert dev.rx.receive(out.c) == 1
    assert drain(out) == [b"\x03" * 60]
    assert dev.rx.stats()["oversize"] == 1
    dev.close()


def hostile_rx(entries):
    """A device whose used ring holds ``entries`` (id, len) then one good frame."""
    model, dev = open_driver()
    for head, length in entries:
        model.rxq.push_used(head, length)
    return model, dev


@pytest.mark.parametrize("entry, counter", [
    ((16, 60), "bad_id"),        # id out of range
    ((1000000, 60), "bad_id"),
    ((0, 20000), "bad_len"),     # longer than the buffer
    ((0, 4), "bad_len"),         # shorter than the header
])
def test_hostile_used_entries_are_counted_and_dropped(no_leaks, entry, counter):
    model, dev = hostile_rx([entry])
    out = Link()
    assert dev.rx.receive(out.c) == 0
    assert dev.rx.stats()[counter] == 1
    dev.close()


def test_a_descriptor_not_in_flight_is_never_freed_twice(no_leaks):
    model, dev = open_driver()
    model.deliver(b"\x05" * 60)
    head = struct.unpack("<I", mem(model.rxq.used + 4, 4)[:])[0]
    model.rxq.push_used(head, 72)  # the same buffer again
    out = Link()
    assert dev.rx.receive(out.c) == 1
    assert dev.rx.stats()["bad_id"] == 1
    drain(out)
    dev.close()


def test_used_idx_jumping_past_the_ring_is_counted_and_not_followed(no_leaks):
    model, dev = open_driver()
    model.rxq.publish(1000)
    out = Link()
    assert dev.rx.receive(out.c) == 0
    assert dev.rx.stats()["bad_idx"] == 1 and dev.rx.broken
    model.txq.publish(500)
    assert dev.tx.reclaim() == 0 and dev.tx.broken
    assert dev.rx.receive(out.c) == 0
    assert dev.rx.stats()["bad_idx"] == 1  # counted once per breakage
    dev.close()


def test_tx_reclaim_ignores_entries_for_descriptors_not_in_flight(no_leaks):
    model, dev = open_driver()
    link = Link()
    fill(link, frames(3))
    dev.tx.transmit(link.c)
    model.txq.push_used(0, 0)
    model.txq.push_used(0, 0)   # the same packet again: must not be freed twice
    model.txq.push_used(7, 0)   # never sent
    model.txq.push_used(99, 0)  # out of range
    assert dev.tx.reclaim() == 1
    assert dev.tx.stats()["bad_id"] == 3 and dev.tx.in_flight() == 2
    dev.close()


def test_bogus_num_buffers_is_counted(no_leaks):
    model, dev = open_driver()
    model.deliver(b"\x06" * 60, header=struct.pack("<10xH", 0) )
    first = model.rxq.descriptor(struct.unpack("<I", mem(model.rxq.used + 4, 4)[:])[0])[0]
    mem(first + 10, 2)[:] = struct.pack("<H", 5000)
    out = Link()
    assert dev.rx.receive(out.c) == 0
    assert dev.rx.stats()["bad_num_buffers"] == 1
    dev.close()


def test_notify_only_when_the_device_asks(no_leaks):
    model, dev = open_driver()
    link = Link()
    fill(link, frames(2))
    dev.tx.transmit(link.c)
    assert dev.tx.notify_needed()
    model.txq.set_used_flags(UsedFlag.NO_NOTIFY)
    fill(link, frames(2))
    dev.tx.transmit(link.c)
    assert not dev.tx.notify_needed()
    assert not dev.tx.notify_needed()  # nothing new: never
    model.take_transmitted()
    dev.close()


def test_event_idx_honours_avail_event(no_leaks):
    model, dev = open_driver(event_idx=True)
    assert dev.has(Feature.RING_EVENT_IDX)
    link = Link()
    model.txq.set_avail_event(3)  # wake me when idx passes 3
    fill(link, frames(2))
    dev.tx.transmit(link.c)      # avail idx 0 -> 2
    assert not dev.tx.notify_needed()
    fill(link, frames(2))
    dev.tx.transmit(link.c)      # 2 -> 4 crosses 3
    assert dev.tx.notify_needed()
    model.take_transmitted()
    dev.close()


def test_checksum_offload_fills_the_header_for_udp(no_leaks):
    model, dev = open_driver(use_checksum=True)
    assert dev.has(Feature.NET_CSUM)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + 4, 0, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    udp = struct.pack("!HHHH", 1, 2, 12, 0) + b"abcd"
    frame = bytes(12) + b"\x08\x00" + ip + udp
    link = Link()
    fill(link, [frame])
    dev.tx.transmit(link.c)
    [(hdr, sent)] = model.take_transmitted()
    flags, _, _, _, start, offset = struct.unpack("<BBHHHH", hdr[:10])
    assert (flags, start, offset) == (1, 34, 6)
    pseudo = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + 12
    assert struct.unpack("!H", sent[40:42])[0] == pseudo
    dev.close()


def ipv4_udp(total: int, flags_fragment: int = 0, padding: bytes = b"") -> bytes:
    """An Ethernet frame with an IPv4 header saying ``total`` bytes and a
    UDP header cut to fit, then ``padding``."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, flags_fragment, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    udp = struct.pack("!HHHH", 1, 2, total - 20, 0xBEEF) + b"abcd"
    return bytes(12) + b"\x08\x00" + ip + udp[:total - 20] + padding


@pytest.mark.parametrize("frame", [
    ipv4_udp(20 + 4),                        # UDP header cut before its checksum field
    ipv4_udp(32, flags_fragment=0x2000),     # a fragment: its sum covers other frames
    ipv4_udp(32, padding=b"\x01"),           # padding the device would sum in
    ipv4_udp(32)[:30],                       # shorter than an IPv4 header
], ids=["short-udp", "fragment", "padding", "short-ip"])
def test_checksum_offload_leaves_frames_it_cannot_finish_alone(frame, no_leaks):
    model, dev = open_driver(use_checksum=True)
    link = Link()
    fill(link, [frame])
    dev.tx.transmit(link.c)
    [(hdr, sent)] = model.take_transmitted()
    assert hdr[0] == 0 and sent == frame  # no NEEDS_CSUM, not a byte changed
    dev.close()
