"""snabbpy.jit_breath: receive, kernel and split as one compiled call, with
the rules of a Batch (nothing lost, nothing sent twice, bad indexes and
lengths refused with the batch freed). Without numba these fail under CI
and skip elsewhere."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import drain, fill

from snabbpy import jit
from snabbpy.core.batch import BatchError
from snabbpy.core.link import MAX_PACKETS, Link

if not jit.available():
    (pytest.fail if os.environ.get("CI") else pytest.skip)(
        "numba is not installed", allow_module_level=True)

from snabbpy.jit_breath import Breath  # noqa: E402


def by_first_byte(mem, offsets, lengths, index, ports):
    """Packet k goes to ``ports[first byte]``; empty packets are dropped
    (index -1); a 0xFF first byte trims the packet to one byte."""
    for k in range(len(offsets)):
        if lengths[k] == 0:
            index[k] = -1
            continue
        b = mem[offsets[k]]
        index[k] = ports[b % len(ports)]
        if b == 0xFF:
            lengths[k] = 1


def test_a_breath_routes_by_the_kernels_index(no_leaks) -> None:
    breath = Breath(by_first_byte).compile(np.zeros(1, np.int64))
    i, o1, o2 = Link(), Link(), Link()
    fs = [bytes([k % 4]) * 10 for k in range(20)] + [b"", b"\xff" * 9]
    fill(i, fs)
    ports = np.array([0, 1, -1, 1] + [0] * 252, np.int64)  # first byte 2: dropped
    assert breath(breath.ports(i, [o1, o2]), ports) == (len(fs), 5 + 1)
    assert i.empty()
    assert drain(o1) == [f for f in fs if f[:1] == b"\0"] + [b"\xff"]
    assert drain(o2) == [f for f in fs if f[:1] in (b"\1", b"\3")]


def test_with_one_output_only_what_fits_is_received(no_leaks) -> None:
    breath = Breath(by_first_byte).compile(np.zeros(1, np.int64))
    i, o = Link(), Link()
    fill(o, [b"old"] * (MAX_PACKETS - 5))
    fill(i, [b"\0new"] * 8)
    ports = breath.ports(i, [o])
    assert breath(ports, np.zeros(1, np.int64)) == (5, 0)
    assert i.nreadable() == 3 and o.full() and o.stats()["txdrop"] == 0
    drain(o)
    assert breath(ports, np.zeros(1, np.int64)) == (3, 0)
    assert drain(o) == [b"\0new"] * 3


def test_at_most_most_packets_per_call(no_leaks) -> None:
    breath = Breath(by_first_byte, most=4).compile(np.zeros(1, np.int64))
    i, o = Link(), Link()
    fill(i, [b"\0"] * 10)
    ports = breath.ports(i, [o])
    assert [breath(ports, np.zeros(1, np.int64))[0] for _ in range(4)] == [4, 4, 2, 0]
    assert len(drain(o)) == 10


def test_without_outputs_every_packet_is_freed(no_leaks) -> None:
    breath = Breath(by_first_byte).compile(np.zeros(1, np.int64))
    i = Link()
    fill(i, [b"\0abc"] * 7)
    assert breath(breath.ports(i, []), np.zeros(1, np.int64)) == (7, 7)
    assert i.empty()


def test_a_bad_index_frees_the_batch_and_sends_nothing(no_leaks) -> None:
    breath = Breath(by_first_byte).compile(np.zeros(1, np.int64))
    i, o = Link(), Link()
    fill(i, [b"\0x"] * 3 + [b"\1y"])
    with pytest.raises(BatchError, match=r"packet 3 has index 5, not -1\.\.0 .*freed"):
        breath(breath.ports(i, [o]), np.array([0, 5], np.int64))
    assert i.empty() and o.empty()


def test_a_length_that_does_not_fit_frees_the_batch(no_leaks) -> None:
    def grow(mem, offsets, lengths, index):
        for k in range(len(offsets)):
            lengths[k] = lengths[k] + 20000 * (k == 1)

    breath = Breath(grow).compile()
    i, o = Link(), Link()
    fill(i, [b"a", b"b", b"c"])
    with pytest.raises(BatchError, match="packet 1 .*does not allow it"):
        breath(breath.ports(i, [o]))
    assert i.empty() and o.empty()


def test_a_kernels_lengths_are_written_back(no_leaks) -> None:
    def halve(mem, offsets, lengths, index):
        for k in range(len(offsets)):
            lengths[k] = lengths[k] // 2

    breath = Breath(halve).compile()
    i, o = Link(), Link()
    fill(i, [b"abcdef", b"xy", b""])
    breath(breath.ports(i, [o]))
    assert drain(o) == [b"abc", b"x", b""]


def test_a_kernel_app_is_one_breath_per_input(no_leaks) -> None:
    class Route(jit.KernelApp):
        kernel = staticmethod(by_first_byte)

        def kernel_args(self):
            return (np.array([1, 0], np.int64),)

    from helpers import wire

    app = wire(Route(), ["a", "b"], ["x", "y"])
    fill(app.input["a"], [b"\0"] * 3)
    fill(app.input["b"], [b"\1"] * 2 + [b""])
    app.push()
    assert drain(app.output["y"]) == [b"\0"] * 3
    assert drain(app.output["x"]) == [b"\1"] * 2
    assert app.stats.snapshot() == {"packets": 5, "dropped": 1}


def test_a_kernel_that_raises_leaks_nothing(no_leaks) -> None:
    def divide(mem, offsets, lengths, index, by):
        for k in range(len(offsets)):
            index[k] = 0 * (lengths[k] // by[0])

    breath = Breath(divide).compile(np.ones(1, np.int64))
    i, o = Link(), Link()
    fill(i, [b"abc"] * 5)
    ports = breath.ports(i, [o])
    with pytest.raises(ZeroDivisionError):
        breath(ports, np.zeros(1, np.int64))
    assert i.empty() and o.empty()
    fill(i, [b"a"] * 2)
    assert breath(ports, np.ones(1, np.int64)) == (2, 0)  # and it works on
    assert drain(o) == [b"a"] * 2
