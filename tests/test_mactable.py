"""MAC tables and the batch helpers around them (lookup_mac, learn_mac),
and Batch.clone: each checked against a dict or per-packet reference,
and fed hostile arguments."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import drain, fill
from hypothesis import given, settings
from hypothesis import strategies as st

from snabbpy.core import packet
from snabbpy.core.batch import Batch, BatchError
from snabbpy.core.link import Link
from snabbpy.core.mactable import MISSING, MacTable


def mac(n: int) -> bytes:
    return (0x020000000000 + n).to_bytes(6, "big")


def number(b: bytes) -> int:
    return int.from_bytes(b[:6], "big")


def batch_of(frames: list[bytes]) -> Batch:
    return Batch.of(packet.from_bytes(f) for f in frames)


def learn_ref(table: dict, macs: list[int], value: int, limit: int) -> None:
    for m in macs:
        if m in table or len(table) < limit:
            table[m] = value


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(-5, 5)), max_size=200),
       st.integers(1, 30))
def test_learn_and_lookup_agree_with_a_dict(steps, limit) -> None:
    t, ref = MacTable(limit), {}
    for m, v in steps:
        t.learn([0x020000000000 + m], v)
        learn_ref(ref, [0x020000000000 + m], v, limit)
    probe = [0x020000000000 + m for m in range(45)]
    assert t.lookup(probe).tolist() == [ref.get(m, MISSING) for m in probe]
    assert len(t) == len(ref) <= limit
    assert all((m in t) == (m in ref) for m in probe)


def test_a_full_table_learns_no_new_macs_but_updates_old_ones() -> None:
    t = MacTable(3)
    t.learn(np.arange(10, dtype=np.uint64), 7)
    assert len(t) == 3 and t.lookup([0, 1, 2, 3]).tolist() == [7, 7, 7, MISSING]
    t.learn([1, 99], 4)
    assert t.get(1) == 4 and t.get(99) is None and t.get(99, -9) == -9


def test_hostile_table_arguments_are_clear_errors() -> None:
    for bad in (0, -1, 1 << 25, 2.5, "10"):
        with pytest.raises(ValueError, match="max_macs"):
            MacTable(bad)
    t = MacTable(8)
    with pytest.raises(ValueError, match="48-bit"):
        t.learn([1 << 48], 1)
    with pytest.raises(ValueError, match="48-bit"):
        t.lookup([-1])
    with pytest.raises(TypeError, match="integers"):
        t.lookup(np.array([1.5]))
    with pytest.raises(ValueError, match="int32"):
        t.learn([1], 1 << 31)
    assert (1 << 60) not in t and "x" not in t


def frames_for(seed: int, n: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        dst = mac(int(rng.integers(0, 30)))
        if rng.random() < 0.1:
            dst = bytes([0x01]) + dst[1:]  # a group address
        f = dst + mac(int(rng.integers(0, 30))) + bytes(int(rng.integers(0, 60)))
        out.append(f[:int(rng.integers(0, len(f) + 1))] if rng.random() < 0.2 else f)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_batch_lookup_and_learn_match_the_reference(seed, no_leaks) -> None:
    t, ref = MacTable(20), {}
    for k in range(8):
        fs = frames_for(seed * 10 + k, 120)
        b = batch_of(fs)
        want = [MISSING if len(f) < 6 else -2 if f[0] & 1 else ref.get(number(f), MISSING)
                for f in fs]
        assert b.lookup_mac(t, 0, group=-2).tolist() == want
        assert b.lookup_mac(t, 0, missing=-7).tolist() == [
            -7 if len(f) < 6 else ref.get(number(f), -7) for f in fs]
        assert b.lookup_mac(t, 0, group=-1, min_length=14, short=-3).tolist() == [
            -3 if len(f) < 14 else -1 if f[0] & 1 else ref.get(number(f), -1) for f in fs]
        if k % 2:
            b.learn_mac(t, k, at=6, mask=b.lengths >= 14)
        else:
            b.learn_mac(t, k, at=6, min_length=14)
        learn_ref(ref, [number(f[6:]) for f in fs if len(f) >= 14], k, 20)
        b.free()
    assert len(t) == len(ref)


def test_learn_without_a_mask_takes_every_packet_long_enough(no_leaks) -> None:
    t = MacTable(16)
    b = batch_of([mac(1) + mac(2), mac(3) + mac(4)[:5], b""])
    b.learn_mac(t, 9)  # source MACs at byte 6: only the first packet has one
    assert len(t) == 1 and t.get(number(mac(2))) == 9
    b.learn_mac(t, 5, at=0)
    assert t.get(number(mac(1))) == 5 and t.get(number(mac(3))) == 5
    b.free()


def test_batch_helpers_refuse_hostile_arguments(no_leaks) -> None:
    t = MacTable(4)
    b = batch_of([mac(1) * 3])
    for off in (-1, packet.PAYLOAD_SIZE - 5, 1 << 40):
        with pytest.raises(ValueError, match="outside any payload"):
            b.lookup_mac(t, off)
        with pytest.raises(ValueError, match="outside any payload"):
            b.learn_mac(t, 1, at=off)
    for table in ({}, None, np.zeros(16, np.uint64)):
        with pytest.raises(TypeError, match="MacTable"):
            b.lookup_mac(table)
    with pytest.raises(ValueError, match="int32"):
        b.learn_mac(t, "port")
    with pytest.raises(ValueError, match="int32"):
        b.lookup_mac(t, missing=1 << 40)
    with pytest.raises(BatchError, match="mask of shape"):
        b.learn_mac(t, 1, mask=[True, False])
    for bad in (-1, 1 << 20, "14"):
        with pytest.raises(ValueError, match="min_length"):
            b.lookup_mac(t, min_length=bad)
        with pytest.raises(ValueError, match="min_length"):
            b.learn_mac(t, 1, min_length=bad)
    with pytest.raises(ValueError, match="int32"):
        b.lookup_mac(t, short=1 << 33)
    b.free()
    with pytest.raises(BatchError, match="after it was sent or freed"):
        b.lookup_mac(t)
    with pytest.raises(BatchError, match="after it was sent or freed"):
        b.learn_mac(t, 1)
    assert len(t) == 0


def test_clone_copies_the_masked_packets_and_keeps_the_batch(no_leaks) -> None:
    a, o1, o2 = Link(), Link(), Link()
    fs = [bytes([k]) * (k + 1) for k in range(10)]
    fill(a, fs)
    b = a.receive_batch()
    b.lengths[0] = 0  # written back before copying
    copies = b.clone(b.lengths % 2 == 0)
    everything = b.clone()
    assert len(copies) == 6 and len(everything) == 10 and len(b) == 10
    copies.transmit(o1)
    b.transmit(o2)
    assert drain(o1) == [b""] + [f for f in fs[1:] if len(f) % 2 == 0]
    assert drain(o2) == [b""] + fs[1:]
    assert [packet.to_bytes(p) for p in everything] == [b""] + fs[1:]
    everything.free()


def test_clone_refuses_a_bad_mask_and_a_used_batch(no_leaks) -> None:
    b = batch_of([b"abc", b"de"])
    with pytest.raises(BatchError, match="mask of shape"):
        b.clone([True])
    assert len(b.clone([0, 0])) == 0  # any integers are a mask
    b.free()
    with pytest.raises(BatchError, match="after it was sent or freed"):
        b.clone()
