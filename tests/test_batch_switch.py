"""Batch.switch_mac, a learning switch's step in one C call: checked
against lookups and learning in Python over a dict, and fed hostile
arguments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_mactable import batch_of, frames_for, learn_ref, mac, number

from snabbpy.core.batch import BatchError
from snabbpy.core.mactable import MacTable


def entry_ref(ref: dict, frame: bytes, nto: int) -> int:
    """The entry of ``to`` a frame takes, by the docstring's rule."""
    if len(frame) < 14:
        return nto - 2
    if frame[0] & 1 or number(frame) not in ref:
        return nto - 1
    return ref[number(frame)]


def switch_ref(ref: dict, frames: list[bytes], port: int, to: list[int], limit: int):
    """(result, counts) of one switch_mac call, learning into ``ref``."""
    taken = [entry_ref(ref, f, len(to)) for f in frames]
    learn_ref(ref, [number(f[6:]) for f in frames if len(f) >= 14], port, limit)
    return [to[j] for j in taken], np.bincount(taken, minlength=len(to)).tolist()


@pytest.mark.parametrize("seed", range(4))
def test_switch_mac_matches_lookup_then_learn_in_python(seed, no_leaks) -> None:
    # ports 0..4 (frames_for's MACs are learnt on them), to: distinct codes
    to = [10, 11, 12, 13, 14, -20, -30]
    t, ref = MacTable(20), {}
    out = np.full(200, 99, np.int64)
    for k in range(10):
        fs = frames_for(seed * 10 + k, 150)
        b = batch_of(fs)
        counts = np.zeros(len(to), np.int64)
        port = k % 5
        want, want_counts = switch_ref(ref, fs, port, to, 20)
        # an own out and counts on even steps, new arrays on odd ones
        got = b.switch_mac(t, port, to, out=out if k % 2 == 0 else None,
                           counts=counts if k % 2 == 0 else None)
        assert got.dtype == np.int64 and got.tolist() == want
        if k % 2 == 0:
            assert got.base is out and counts.tolist() == want_counts
        b.free()
    assert len(t) == len(ref)
    assert all(t.get(m) == v for m, v in ref.items())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 5), st.integers(0, 5),
                          st.integers(0, 20)), max_size=60),
       st.integers(1, 6))
def test_a_batch_sees_the_table_as_it_was_before_it(frames, limit) -> None:
    # (port, dst host, src host, length): a frame to a host learnt in the
    # same batch is still unknown.
    fs = [(mac(d) + mac(s) + bytes(8))[:n] for _, d, s, n in frames]
    to = [0, 1, 2, -1, -2]
    t, ref = MacTable(limit), {}
    for port in range(3):
        b = batch_of(fs)
        counts = np.zeros(len(to), np.int64)
        want, want_counts = switch_ref(ref, fs, port, to, limit)
        assert b.switch_mac(t, port, to, counts=counts).tolist() == want
        assert counts.tolist() == want_counts
        b.free()
    assert len(t) == len(ref) <= limit


def test_counts_add_up_over_batches_and_an_empty_batch_is_fine(no_leaks) -> None:
    t = MacTable(8)
    counts = np.zeros(3, np.int64)
    for _ in range(3):
        b = batch_of([mac(1) + mac(1) + b"\x08\x00", b"short"])
        b.switch_mac(t, 0, [5, -1, -2], counts=counts)
        b.free()
    # mac(1) is unknown in the first batch, then learnt on port 0
    assert counts.tolist() == [2, 3, 1]
    b = batch_of([])
    assert b.switch_mac(t, 0, [5, -1, -2], out=np.zeros(0, np.int64)).tolist() == []
    b.free()


def test_a_table_value_outside_to_is_an_error_and_learns_nothing(no_leaks) -> None:
    t = MacTable(8)
    t.learn([number(mac(1))], 7)
    t.learn([number(mac(3))], -4)
    for dst in (mac(1), mac(3)):
        b = batch_of([mac(9) + mac(5) + b"\x08\x00", dst + mac(6) + b"\x08\x00"])
        counts = np.zeros(4, np.int64)
        with pytest.raises(BatchError, match=r"packet 1's destination MAC .* outside 0..1"):
            b.switch_mac(t, 0, [0, 1, -1, -2], counts=counts)
        assert len(t) == 2 and counts.tolist() == [0, 0, 0, 0]
        assert b.alive
        b.free()


def test_hostile_arguments_are_clear_errors(no_leaks) -> None:
    t = MacTable(8)
    b = batch_of([mac(1) + mac(2) + b"\x08\x00"] * 3)
    to = [0, -1, -2]
    for table in ({}, None, np.zeros(16, np.uint64)):
        with pytest.raises(TypeError, match="MacTable"):
            b.switch_mac(table, 0, to)
    for port in ("p1", 1 << 31, 1.5):
        with pytest.raises(ValueError, match="int32"):
            b.switch_mac(t, port, to)
    for bad in ([1.5, 2.0], ["a", "b"], [True, False], [1 << 70, 0],
                np.array([1 << 63, 0], np.uint64)):
        with pytest.raises(ValueError, match="to must be int64 numbers"):
            b.switch_mac(t, 0, bad)
    with pytest.raises(ValueError, match="1-D"):
        b.switch_mac(t, 0, np.zeros((2, 2), np.int64))
    for short in ([], [3]):
        with pytest.raises(ValueError, match="2 entries or more"):
            b.switch_mac(t, 0, short)
    for out in (np.zeros(2, np.int64), np.zeros(3, np.int32), [0, 0, 0],
                np.zeros(6, np.int64)[::2], np.zeros((3, 1), np.int64)):
        with pytest.raises(ValueError, match="out"):
            b.switch_mac(t, 0, to, out=out)
    ro = np.zeros(3, np.int64)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        b.switch_mac(t, 0, to, out=ro)
    shared = np.zeros(8, np.int64)
    for counts in (np.zeros(4, np.int64), np.zeros(3, np.float64), shared[:3]):
        with pytest.raises(ValueError, match="counts"):
            b.switch_mac(t, 0, to, out=shared[2:], counts=counts)
    assert len(t) == 0  # none of those learnt anything
    b.free()
    with pytest.raises(BatchError, match="after it was sent or freed"):
        b.switch_mac(t, 0, to)
