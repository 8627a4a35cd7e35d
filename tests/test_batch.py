"""Batches: offsets/lengths over packet memory, the ways a batch ends, and
the one-call helpers, each checked against a per-packet computation."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from helpers import drain, fill

from snabbpy.core import packet
from snabbpy.core.batch import Batch, BatchError
from snabbpy.core.link import Link


@pytest.fixture
def no_leak():
    before = packet.in_use()
    yield
    assert packet.in_use() == before
    assert packet.double_frees() == 0


def test_offsets_and_lengths_name_the_payloads_in_memory(no_leak) -> None:
    a, b = Link(), Link()
    frames = [bytes([i]) * (i * 7) for i in range(20)]
    fill(a, frames)
    batch = a.receive_batch(max_packets=16)
    assert len(batch) == 16 and a.nreadable() == 4
    mem = packet.memory()
    assert mem.dtype == np.uint8
    pairs = zip(batch.offsets, batch.lengths, strict=True)
    assert [bytes(mem[o:o + n]) for o, n in pairs] == frames[:16]
    assert batch.offsets.dtype == np.int64
    mem[batch.offsets[3]] = 0xEE  # writes go to the packet
    batch.lengths[2] = 5
    batch.transmit(b)
    got = drain(b)
    assert got[3][0] == 0xEE and got[2] == frames[2][:5] and got[5] == frames[5]
    drain(a)


def test_a_used_up_batch_raises_and_never_frees_twice(no_leak) -> None:
    a, b = Link(), Link()
    fill(a, [b"x" * 60] * 4)
    batch = a.receive_batch()
    batch.transmit(b)
    for use in (lambda: batch.transmit(b), batch.free, lambda: batch.u8(0),
                lambda: batch.select([True] * 4), lambda: batch.split([0] * 4, [b])):
        with pytest.raises(BatchError, match="after it was sent or freed"):
            use()
    assert len(drain(b)) == 4
    fill(a, [b"y"])
    batch = a.receive_batch()
    batch.free()
    with pytest.raises(BatchError):
        batch.free()


def test_bad_lengths_are_refused_before_anything_is_sent(no_leak) -> None:
    a, b = Link(), Link()
    fill(a, [b"z" * 10] * 3)
    batch = a.receive_batch()
    batch.lengths[1] = packet.PAYLOAD_SIZE + 1
    with pytest.raises(BatchError, match="packet 1"):
        batch.transmit(b)
    assert b.empty()
    batch.lengths[1] = -1
    with pytest.raises(BatchError):
        batch.transmit(b)
    batch.lengths[1] = 10
    batch.transmit(b)
    assert len(drain(b)) == 3


def test_free_mask_select_and_split_account_for_every_packet(no_leak) -> None:
    a, out0, out1 = Link(), Link(), Link()
    frames = [bytes([i]) * 20 for i in range(30)]
    fill(a, frames)
    batch = a.receive_batch()
    batch.free(np.arange(30) % 3 == 0)  # frees 0, 3, 6 ...
    assert len(batch) == 20
    odd = batch.select(batch.u8(0) % 2 == 1)
    assert [int(x) for x in odd.u8(0)] == [i for i in range(30) if i % 3 and i % 2]
    assert len(batch) + len(odd) == 20
    odd.transmit(out1)
    index = np.where(batch.u8(0) < 10, 0, -1)
    index[-1] = 1
    batch.split(index, [out0, out1])
    assert [f[0] for f in drain(out0)] == [i for i in range(10) if i % 3 and i % 2 == 0]
    assert [f[0] for f in drain(out1)][-1] == 28
    with pytest.raises(BatchError, match="index 2"):
        fill(a, [b"q"])
        bad = a.receive_batch()
        try:
            bad.split([2], [out0, out1])
        finally:
            bad.free()


def test_iterating_yields_packets_like_the_old_list(no_leak) -> None:
    a = Link()
    fill(a, [b"a", b"bb"])
    batch = a.receive_batch()
    assert [packet.to_bytes(p) for p in batch] == [b"a", b"bb"]
    for p in batch:
        packet.free(p)


def test_fields_read_and_write_and_short_packets_are_safe(no_leak) -> None:
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in range(0, 40)]
    a, b = Link(), Link()
    fill(a, frames)
    batch = a.receive_batch()
    for off in (0, 3, 12, 30, 38):
        assert list(batch.u8(off)) == [f[off] if len(f) > off else 0 for f in frames]
        assert list(batch.u16be(off)) == [
            struct.unpack_from("!H", f, off)[0] if len(f) >= off + 2 else 0 for f in frames]
        assert list(batch.u32be(off)) == [
            struct.unpack_from("!I", f, off)[0] if len(f) >= off + 4 else 0 for f in frames]
        rows = batch.bytes(off, 6)
        assert rows.shape == (40, 6)
        assert [bytes(r) for r in rows] == [f[off:off + 6].ljust(6, b"\0") for f in frames]
    batch.set_u16be(12, 0x86DD)
    batch.set_u32be(2, np.arange(40, dtype=np.uint32))
    batch.set_u8(0, 0xAB)
    batch.set_bytes(20, np.full((40, 3), 7, np.uint8))
    with pytest.raises(ValueError, match="outside"):
        batch.set_u8(1, 256)
    with pytest.raises(ValueError):
        batch.u16be(packet.PAYLOAD_SIZE - 1)
    batch.transmit(b)
    for k, (f, g) in enumerate(zip(frames, drain(b), strict=True)):
        e = bytearray(f)
        if len(e) >= 1:
            e[0] = 0xAB
        if len(e) >= 6:
            e[2:6] = struct.pack("!I", k)
        if len(e) >= 14:
            e[12:14] = b"\x86\xdd"
        if len(e) >= 23:
            e[20:23] = b"\7\7\7"
        assert g == bytes(e), k


def test_empty_batch_is_fine(no_leak) -> None:
    a = Link()
    batch = a.receive_batch()
    assert len(batch) == 0 and not batch and len(batch.u16be(12)) == 0
    batch.transmit(a)
    assert Batch.of([]).select([]).alive


def test_arrays_kept_by_the_caller_are_never_reused(no_leak) -> None:
    a, b = Link(), Link()
    fill(a, [b"x" * 30] * 3)
    first = a.receive_batch(max_packets=8)
    kept_lengths, kept_view = first.lengths, first.offsets[1:]
    values = (kept_lengths.copy(), kept_view.copy())
    first.transmit(b)
    for _ in range(3):  # ended batches' arrays go back to a pool...
        fill(a, [b"y" * 50] * 8)
        a.receive_batch(max_packets=8).transmit(b)
    # ...but not the ones still held
    assert (kept_lengths == values[0]).all() and (kept_view == values[1]).all()
    assert len(drain(b)) == 27


def test_only_lengths_changed_in_the_batch_are_written_back(no_leak) -> None:
    a, b = Link(), Link()
    fill(a, [b"abcdef"] * 3)
    batch = a.receive_batch()
    batch.lengths[0] = 2
    batch.writeback()
    batch.lengths[0] = 6  # back to the length as received: written all the same
    batch[1].length = 3  # per-packet code shortened a packet: the batch leaves it
    batch.lengths[2] = 5
    batch.transmit(b)
    assert drain(b) == [b"abcdef", b"abc", b"abcde"]
    # After free(mask) or select(), the batch writes (and checks) every length.
    fill(a, [b"abcdef"] * 3)
    batch = a.receive_batch()
    batch[0].length = 1
    batch.free(np.array([False, False, True]))
    batch.lengths[1] = 20000
    with pytest.raises(BatchError, match="packet 1"):
        batch.transmit(b)
    batch.lengths[1] = 4
    batch.transmit(b)
    assert drain(b) == [b"abcdef", b"abcd"]
