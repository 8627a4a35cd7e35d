"""configs/fastapps.py: the vector and JIT forms of each example app give,
byte for byte, what its per-packet form gives, on random frames (runts,
non-IPv4, TTL 0 and 1, VLAN-tagged, broadcast, every length 0..10240).

Two levels: the batch functions over a packet-memory array laid out here
(the whole array is compared, so a write outside a frame is caught), and
the apps themselves on links (outputs compared, no packet leaked or freed
twice). The JIT forms need numba: missing, they fail under CI and skip
elsewhere."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "configs"))

import fastapps as fa  # noqa: E402
from fastapps_frames import every_length, frames  # noqa: E402

from snabbpy.core import packet  # noqa: E402
from snabbpy.core.batch import Batch  # noqa: E402
from snabbpy.core.mactable import MacTable  # noqa: E402


def njit(fn):
    """``fn`` compiled by numba; without numba fails under CI, skips elsewhere."""
    try:
        import numba
    except ImportError:
        (pytest.fail if os.environ.get("CI") else pytest.skip)("numba is not installed")
    return numba.njit(cache=False)(fn)


# --------------------------------------------------------------------------
# References, one frame at a time


def macswap_ref(f: bytes) -> bytes | None:
    """What MacSwap makes of ``f`` (None: dropped)."""
    return f[6:12] + f[:6] + f[12:] if len(f) >= 14 else None


def ttl_ref(f: bytes) -> bytes | None:
    """What TTLDecrement makes of ``f`` (None: dropped), through the very
    function the per-packet app uses."""
    if len(f) < 34:
        return None
    b = bytearray(f)
    return bytes(b) if fa.ttl_decrement(memoryview(b)) else None


REFS = {"macswap": macswap_ref, "ttl": ttl_ref}


# --------------------------------------------------------------------------
# Batch functions over a packet-memory array


def layout(fs: list[bytes], seed: int = 0):
    """Packet memory holding ``fs`` (random gaps of random bytes between
    them, as in real memory), their offsets and lengths."""
    rng = np.random.default_rng(seed)
    gaps = rng.integers(0, 80, len(fs) + 1)
    offsets = np.zeros(len(fs), np.int64)
    at = int(gaps[0])
    for k, f in enumerate(fs):
        offsets[k] = at
        at += len(f) + int(gaps[k + 1])
    mem = rng.integers(0, 256, at + 64, dtype=np.uint8)
    for o, f in zip(offsets, fs, strict=True):
        mem[o:o + len(f)] = np.frombuffer(f, np.uint8)
    lengths = np.array([len(f) for f in fs], np.uint16)
    return mem, offsets, lengths


def vector_form(app: str):
    return {"macswap": fa.macswap_vector, "ttl": fa.ttl_vector}[app]


def jit_form(app: str):
    kernel = njit({"macswap": fa.macswap_kernel, "ttl": fa.ttl_kernel}[app])

    def work(mem, offsets, lengths):
        index = np.full(len(offsets), 7, np.int64)
        sent = kernel(mem, offsets, lengths, index)
        assert set(index.tolist()) <= {0, -1} and sent == np.count_nonzero(index == 0)
        return index == 0

    return work


def check_batch_function(work, ref, fs: list[bytes]) -> None:
    mem, offsets, lengths = layout(fs)
    want = mem.copy()
    want_keep = []
    for o, f in zip(offsets, fs, strict=True):
        out = ref(f)
        want_keep.append(out is not None)
        if out is not None:
            want[o:o + len(out)] = np.frombuffer(out, np.uint8)
    keep = work(mem, offsets, lengths)
    assert keep.tolist() == want_keep
    bad = np.flatnonzero(mem != want)
    assert not len(bad), f"{len(bad)} bytes differ, first at {bad[:5]}"


FORMS = {"vector": vector_form, "jit": jit_form}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("app", REFS)
@pytest.mark.parametrize("seed", range(4))
def test_batch_function_matches_reference_on_random_frames(app, form, seed):
    check_batch_function(FORMS[form](app), REFS[app], frames(seed, 3000))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("app", REFS)
def test_batch_function_matches_reference_at_every_length(app, form):
    check_batch_function(FORMS[form](app), REFS[app], every_length(7))


# Hypothesis: frames made of a header prefix (IPv4 with any TTL, VLAN,
# other) and any bytes, cut anywhere.
PREFIXES = [fa.ipv4_frame(fa.host_mac(1), fa.host_mac(2), 64, ttl)[:34] for ttl in (0, 1, 2, 255)]
PREFIXES += [b"\xff" * 12 + b"\x81\x00\x00\x01\x08\x00", b"\x01" * 12 + b"\x86\xdd", b""]
hyp_frames = st.lists(
    st.builds(lambda pre, rest, cut: (pre + rest)[:cut], st.sampled_from(PREFIXES),
              st.binary(max_size=64), st.integers(0, 120)),
    max_size=40)


@settings(max_examples=150, deadline=None)
@given(fs=hyp_frames, app=st.sampled_from(sorted(REFS)))
def test_vector_form_matches_reference_hypothesis(fs, app):
    check_batch_function(vector_form(app), REFS[app], fs)


@pytest.mark.parametrize("app", REFS)
def test_jit_form_matches_reference_hypothesis(app):
    work = jit_form(app)

    @settings(max_examples=150, deadline=None)
    @given(fs=hyp_frames)
    def check(fs):
        check_batch_function(work, REFS[app], fs)

    check()


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("app", REFS)
def test_batch_function_when_every_frame_is_sent(app, form):
    # The fast path of a batch with nothing to drop.
    fs = fa.template_frames(64, 7, 0, 5, 100, 2) + fa.template_frames(1500, 3, 9, 3, 50, 255)
    check_batch_function(FORMS[form](app), REFS[app], fs)


def test_ttl_reference_is_rfc1624_right():
    # The reference itself: after the incremental update the header sums
    # to a valid checksum again, and TTL 0/1 and non-IPv4 are dropped.
    for f in frames(11, 2000):
        out = ttl_ref(f)
        if out is not None:
            assert out[22] == f[22] - 1 and f[22] >= 2
            ihl = (f[14] & 15) * 4
            if fa.ipv4_checksum(f[14:24] + b"\0\0" + f[26:14 + ihl]) == f[24] << 8 | f[25] \
                    and len(f) >= 14 + ihl:
                assert fa.ipv4_checksum(out[14:24] + b"\0\0" + out[26:14 + ihl]) \
                    == out[24] << 8 | out[25]
        else:
            assert len(f) < 34 or f[12:14] != b"\x08\x00" or f[22] <= 1 \
                or f[14] >> 4 != 4 or f[14] & 15 < 5


# The switch's decisions, batch after batch, on three ports (port 2 is an
# input only: frames to it are filtered).
OUTPUTS = [True, True, False]


def switch_batches(seed: int, n: int):
    rng = np.random.default_rng(seed)
    fs = frames(seed, n)
    cuts = np.sort(rng.integers(0, n, 12))
    return [(int(rng.integers(0, 3)), fs[a:b]) for a, b in zip([0, *cuts], [*cuts, n], strict=True)]


def reference_decisions(batches, max_macs: int):
    table: dict[bytes, int] = {}
    out = []
    for port, fs in batches:
        out.append([fa.l2_decide(table, f, port, OUTPUTS) for f in fs])
        fa.l2_learn(table, [f[6:12] for f in fs if len(f) >= 14], port, max_macs)
    return out


def vector_decisions(batches, max_macs: int):
    table = MacTable(max_macs)
    outputs = np.array(OUTPUTS)
    out = []
    for port, fs in batches:
        b = Batch.of(packet.from_bytes(f) for f in fs)
        out.append(fa.l2_vector(table, b, port, fa.port_map(port, outputs)).tolist())
        b.free()
    return out


def jit_decisions(batches, max_macs: int):
    kernel = njit(fa.l2_kernel)
    size = 1 << max(4, (2 * max_macs - 1).bit_length())
    keys, ports = np.zeros(size, np.uint64), np.zeros(size, np.int32)
    state = np.array([0, max_macs], np.int64)
    outputs = np.array(OUTPUTS)
    out = []
    for port, fs in batches:
        mem, offsets, lengths = layout(fs)
        dest = np.zeros(len(fs), np.int32)
        kernel(mem, offsets, lengths, port, outputs, keys, ports, state, dest)
        out.append(dest.tolist())
    return out


@pytest.mark.parametrize("max_macs", [3, 65536])
@pytest.mark.parametrize("form", ["vector", "jit"])
@pytest.mark.parametrize("seed", range(3))
def test_switch_decisions_match_reference(form, seed, max_macs):
    batches = switch_batches(seed, 2500)
    want = reference_decisions(batches, max_macs)
    got = (vector_decisions if form == "vector" else jit_decisions)(batches, max_macs)
    assert got == want
    flat = [d for b in want for d in b]
    # The random traffic exercises every outcome.
    assert {fa.DROP, fa.FLOOD, 0, 1} <= set(flat)


def test_switch_table_of_thousands_of_macs():
    # 3,000 hosts learnt on two ports, then every frame to a host behind
    # the other port is forwarded there, in every form.
    hosts = 3000
    learn = [(k % 2, [fa.host_mac(1 << 20) + fa.host_mac(h) + bytes(50)
                      for h in range(k % 2, hosts, 2)]) for k in range(2)]
    probe = [(p, [fa.host_mac(h) + fa.host_mac(5) + bytes(50) for h in range(1 - p, hosts, 2)])
             for p in range(2)]
    for decide in (reference_decisions, vector_decisions, jit_decisions):
        out = decide(learn + probe, 65536)
        assert out[2] == [1] * (hosts // 2) and out[3] == [0] * (hosts // 2), decide


# --------------------------------------------------------------------------
# The apps themselves, on links

from helpers import drain, fill, wire  # noqa: E402

from snabbpy.core.link import MAX_PACKETS  # noqa: E402

APPS = {
    "macswap": {"packet": fa.MacSwap, "vector": fa.MacSwapVector, "jit": fa.MacSwapJIT},
    "ttl": {"packet": fa.TTLDecrement, "vector": fa.TTLDecrementVector,
            "jit": fa.TTLDecrementJIT},
    "l2": {"packet": fa.L2Switch, "vector": fa.L2SwitchVector, "jit": fa.L2SwitchJIT},
}


def make(app: str, form: str, conf: dict | None = None):
    if form == "jit":
        njit(lambda: 0)  # numba is there (or the test fails under CI / skips)
    cls = APPS[app][form]
    return cls(conf) if conf is not None else cls()


def chunks(fs: list[bytes], rng: np.random.Generator):
    """``fs`` cut into batches that fit on a link, of random sizes."""
    at = 0
    while at < len(fs):
        n = int(rng.integers(1, MAX_PACKETS))
        yield fs[at:at + n]
        at += n


def run_filter(app: str, form: str, fs: list[bytes], seed: int = 0):
    """Every frame through one input -> output app; the frames sent on and
    the app's counters."""
    a = wire(make(app, form), ["input"], ["output"])
    out = []
    for batch in chunks(fs, np.random.default_rng(seed)):
        fill(a.input["input"], batch)
        a.push()
        assert a.input["input"].empty()
        out += drain(a.output["output"])
    return out, a.stats.snapshot()


@pytest.mark.parametrize("app", ["macswap", "ttl"])
def test_per_packet_app_matches_reference(app, no_leaks):
    fs = frames(23, 3000) + every_length(24)
    got, counts = run_filter(app, "packet", fs)
    assert got == [r for r in map(REFS[app], fs) if r is not None]
    assert sum(counts.values()) == len(fs)


@pytest.mark.parametrize("form", ["vector", "jit"])
@pytest.mark.parametrize("app", ["macswap", "ttl"])
def test_app_matches_per_packet_app(app, form, no_leaks):
    fs = frames(21, 4000) + every_length(22)
    want, want_counts = run_filter(app, "packet", fs)
    got, counts = run_filter(app, form, fs)
    assert got == want
    assert got == [r for r in map(REFS[app], fs) if r is not None]
    assert sum(counts.values()) == len(fs)
    if app == "ttl":
        assert counts == want_counts


def run_switch(form: str, batches, max_macs: int):
    """Batches (port number, frames) into a three-port switch whose third
    port is an input only; the frames on each output and the counters."""
    a = wire(make("l2", form, {"max_macs": max_macs}), ["p1", "p2", "p3"], ["p1", "p2"])
    names = ["p1", "p2", "p3"]
    out = {"p1": [], "p2": []}
    for port, fs in batches:
        fill(a.input[names[port]], fs)
        a.push()
        assert a.input[names[port]].empty()
        for name in out:
            out[name].append(drain(a.output[name]))
    return out, a.stats.snapshot()


def run_three_output_switch(form: str, batches, max_macs: int):
    """The same into a switch with three outputs, so flooded frames are
    copied (to p2 or p1 first, the frame itself last)."""
    names = ["p1", "p2", "p3"]
    a = wire(make("l2", form, {"max_macs": max_macs}), names, names)
    out = {n: [] for n in names}
    for port, fs in batches:
        fill(a.input[names[port]], fs)
        a.push()
        for name in out:
            out[name].append(drain(a.output[name]))
    return out, a.stats.snapshot()


def run_two_port_switch(form: str, batches, max_macs: int):
    a = wire(make("l2", form, {"max_macs": max_macs}), ["p1", "p2"], ["p1", "p2"])
    out = {"p1": [], "p2": []}
    for port, fs in batches:
        fill(a.input[f"p{port % 2 + 1}"], fs)
        a.push()
        for name in out:
            out[name].append(drain(a.output[name]))
    return out, a.stats.snapshot()


@pytest.mark.parametrize("max_macs", [3, 65536])
@pytest.mark.parametrize("form", ["vector", "jit"])
@pytest.mark.parametrize("run", [run_switch, run_three_output_switch, run_two_port_switch])
def test_switch_app_matches_per_packet_switch(run, form, max_macs, no_leaks):
    batches = [(p, fs[:MAX_PACKETS - 1]) for p, fs in switch_batches(5, 3000)]
    batches += [(k % 3, fs) for k, fs in enumerate(
        chunks(every_length(6), np.random.default_rng(1)))]
    want, want_counts = run("packet", batches, max_macs)
    got, counts = run(form, batches, max_macs)
    assert got == want
    assert counts == want_counts
    assert all(counts[k] for k in ("forwarded", "flooded", "filtered", "runts")), counts


def test_frames_app_sends_its_templates(no_leaks):
    a = wire(fa.Frames({"size": 64, "ttl": 9, "src_hosts": 3, "src_base": 0,
                        "dst_hosts": 2, "dst_base": 10}), [], ["output"])
    a.pull()
    got = drain(a.output["output"])
    a.stop()
    want = fa.template_frames(64, 3, 0, 2, 10, 9)
    assert len(want) == 3 and len(got) == MAX_PACKETS
    assert got[:6] == want + want
    assert all(ttl_ref(f)[22] == 8 for f in want)


def test_frames_app_rejects_bad_config():
    with pytest.raises(fa.ConfigError, match="size 20 is outside"):
        fa.Frames({"size": 20, "ttl": 64, "src_hosts": 1, "src_base": 0, "dst_hosts": 1,
                   "dst_base": 1})
    with pytest.raises(fa.ConfigError, match="src_hosts 0 is outside"):
        fa.Frames({"size": 64, "ttl": 64, "src_hosts": 0, "src_base": 0, "dst_hosts": 1,
                   "dst_base": 1})
    with pytest.raises(fa.ConfigError, match="max_macs 0 is outside"):
        fa.L2SwitchVector({"max_macs": 0})


def test_jit_apps_without_numba_say_so_in_one_line(monkeypatch):
    from snabbpy import jit

    monkeypatch.setattr(jit, "numba", None)
    for cls in (fa.MacSwapJIT, fa.TTLDecrementJIT):
        with pytest.raises(fa.ConfigError, match=r"numba.*pip install -e '\.\[jit\]'"):
            cls()
    with pytest.raises(fa.ConfigError, match="numba"):
        fa.L2SwitchJIT({"max_macs": 16})
