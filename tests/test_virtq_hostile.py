"""Whatever a device writes into the used ring, the driver never frees a
packet twice, never loses one, and never reads outside its rings: random
used entries (ids, lengths, num_buffers, used idx) from a hostile device."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from snabbpy.core import packet
from snabbpy.core.link import Link
from snabbpy.testing.vguest_model import mem, open_driver

SIZE = 16
entry = st.tuples(st.integers(0, 40), st.integers(0, 20000), st.integers(0, 40))


@settings(max_examples=150, deadline=None)
@given(entries=st.lists(entry, max_size=40), idx_jump=st.integers(0, 0xFFFF),
       sends=st.integers(0, SIZE))
def test_random_used_entries_never_lose_or_double_free_packets(entries, idx_jump, sends):
    before = packet.in_use()
    model, dev = open_driver(SIZE, rx_buffer_size=256)
    link, out = Link(), Link()
    for _ in range(sends):
        link.transmit(packet.from_bytes(b"\x00" * 60))
    dev.tx.transmit(link.c)
    for head, length, nbuf in entries:
        for q in (model.rxq, model.txq):
            if head < SIZE:  # a header the device could have written
                addr = q.descriptor(head)[0]
                if addr:
                    mem(addr + 10, 2)[:] = struct.pack("<H", nbuf)
            q.push_used(head, length)
    for _ in range(3):
        dev.rx.receive(out.c)
        dev.tx.reclaim()
        dev.rx.refill()
    model.rxq.publish(idx_jump)
    dev.rx.receive(out.c)
    out.drain()
    assert dev.close() <= 2 * SIZE
    assert packet.in_use() == before
