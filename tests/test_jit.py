"""snabbpy.jit: kernels compiled by numba over packet.memory() (no copy),
the in-kernel helpers, KernelApp, and the one-line error without numba.
Without numba these fail under CI and skip elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import drain, fill, wire

from snabbpy import jit
from snabbpy.core import packet
from snabbpy.core.batch import Batch, BatchError
from snabbpy.core.link import Link

if not jit.available():
    (pytest.fail if os.environ.get("CI") else pytest.skip)(
        "numba is not installed", allow_module_level=True)

import numba  # noqa: E402


@pytest.fixture
def no_leak():
    before = packet.in_use()
    yield
    assert packet.in_use() == before
    assert packet.double_frees() == 0


def swap(mem, offsets, lengths, out):
    for k in range(offsets.shape[0]):
        if jit.length(lengths, k) < 12:
            out[k] = -1
            continue
        o = jit.offset(offsets, k)
        for j in range(6):
            a = mem[o + j]
            mem[o + j] = mem[o + 6 + j]
            mem[o + 6 + j] = a
        out[k] = 0


def ttl(mem, offsets, lengths, out):
    for k in range(offsets.shape[0]):
        p = jit.payload(mem, offsets, lengths, k)
        if p.shape[0] < 34 or jit.load16be(p, 12) != 0x0800 or p[22] <= 1:
            out[k] = -1
            continue
        o = offsets[k]
        old = jit.load16be(mem, o + 22)
        jit.store16be(mem, o + 22, old - 0x100)
        jit.checksum_adjust(mem, o + 24, old, old - 0x100)
        jit.set_length(lengths, k, lengths[k] - 1)  # and trim one byte
        out[k] = 0


def frames(n: int, seed: int = 1) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        f = bytearray(rng.integers(0, 256, int(rng.integers(0, 80)), dtype=np.uint8).tobytes())
        if len(f) >= 34 and i % 3:
            f[12:14] = b"\x08\x00"
        out.append(bytes(f))
    return out


def test_a_kernel_works_in_place_on_packet_memory(no_leak) -> None:
    k = jit.kernel(swap).compile(np.empty(0, np.int64))
    fs = frames(50)
    b = Batch.of([packet.from_bytes(f) for f in fs])
    out = np.zeros(len(b), np.int64)
    k(packet.memory(), b.offsets, b.lengths, out)
    o = Link()
    b.split(out, [o])
    assert drain(o) == [f[6:12] + f[:6] + f[12:] for f in fs if len(f) >= 12]


def test_plain_numba_njit_sees_the_same_memory_without_copies(no_leak) -> None:
    @numba.njit
    def mark(mem, offsets, lengths):
        for k in range(offsets.shape[0]):
            if lengths[k] > 0:
                mem[offsets[k]] = 0xAB

    p = packet.from_bytes(b"\0\0")
    b = Batch.of([p])
    mark(packet.memory(), b.offsets, b.lengths)
    assert packet.to_bytes(p) == b"\xab\0"
    b.free()


def test_helpers_agree_with_the_batch_helpers(no_leak) -> None:
    fs = [f for f in frames(200, 2) if len(f) >= 34 and f[12:14] == b"\x08\x00" and f[22] > 1]
    a = Batch.of([packet.from_bytes(f) for f in fs])
    b = Batch.of([packet.from_bytes(f) for f in fs])
    out = np.zeros(len(a), np.int64)
    jit.kernel(ttl)(packet.memory(), a.offsets, a.lengths, out)
    assert (out == 0).all()
    w = b.u16be(22)
    b.set_u16be(22, w - 0x100)
    b.checksum_adjust(24, w, w - 0x100)
    b.lengths -= 1
    la, lb = Link(), Link()
    a.transmit(la)
    b.transmit(lb)
    assert drain(la) == drain(lb)


def test_kernel_app_routes_by_the_kernels_index_and_counts(no_leak) -> None:
    class Swap(jit.KernelApp):
        kernel = jit.kernel(swap)

    app = Swap()
    wire(app, ["input"], ["output"])
    inp, out = app.input, app.output
    fs = frames(300, 3)
    fill(inp["input"], fs)
    app.push()
    got = drain(out["output"])
    assert got == [f[6:12] + f[:6] + f[12:] for f in fs if len(f) >= 12]
    s = app.stats.snapshot()
    assert s["packets"] == len(got) and s["dropped"] == len(fs) - len(got)


def test_a_bad_port_index_is_an_error_without_a_leak(no_leak) -> None:
    @jit.kernel
    def bad(mem, offsets, lengths, out):
        for k in range(offsets.shape[0]):
            out[k] = 5

    class Bad(jit.KernelApp):
        kernel = bad

    app = Bad()
    wire(app, ["input"], ["output"])
    inp = app.input
    fill(inp["input"], [b"x" * 20] * 3)
    with pytest.raises(BatchError, match="index 5"):
        app.push()


def test_without_numba_the_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "from snabbpy import jit\n"
        "assert not jit.available()\n"
        "for use in (lambda: jit.kernel(len), lambda: jit.payload(1, 2, 3, 4)):\n"
        "    try:\n"
        "        use()\n"
        "    except jit.JitUnavailable as e:\n"
        "        print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       check=True)
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert all(line.endswith("pip install -e '.[jit]'") for line in lines)
