"""rss.RSS and its symmetric flow hash: both directions of a flow on one
output, flows spread evenly, hostile frames safe, the C hash equal to a
Python reference, every packet sent on or freed once."""

from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

import pytest
from helpers import SNABBPY, drain, fill, wire
from hypothesis import given, settings
from hypothesis import strategies as st

from snabbpy.apps.rss import RSS, Flows, flow_hash, output_index, port_order
from snabbpy.core import config
from snabbpy.core.native import ffi, lib

ROOT = Path(__file__).resolve().parent.parent
M64 = (1 << 64) - 1


# --- A Python reference of the hash (see snabbpy/apps/rss/rss.c) -------------

def _pair(a: bytes, b: bytes) -> bytes:
    return a + b if a <= b else b + a


def ref_key(p: bytes) -> bytes:
    """The key rss.c hashes, built again from the description."""
    n = len(p)
    if n < 12:
        return b"\0" + p
    off, etype = 12, 0
    for tags in range(3):
        if off + 2 > n:
            break
        etype = int.from_bytes(p[off:off + 2], "big")
        off += 2
        if tags == 2 or etype not in (0x8100, 0x88A8, 0x9100):
            break
        off += 2
    if etype == 0x0800 and off + 20 <= n and p[off] >> 4 == 4:
        ihl, proto = (p[off] & 15) * 4, p[off + 9]
        frag = int.from_bytes(p[off + 6:off + 8], "big") & 0x3FFF
        src, dst = p[off + 12:off + 16], p[off + 16:off + 20]
        if not frag and ihl >= 20 and proto in (6, 17, 132) and off + ihl + 4 <= n:
            ports = p[off + ihl:off + ihl + 4]
            return bytes([1, proto]) + _pair(src + ports[:2], dst + ports[2:])
        return b"\2" + _pair(src, dst)
    if etype == 0x86DD and off + 40 <= n and p[off] >> 4 == 6:
        nh, l4 = p[off + 6], off + 40
        for _ in range(8):
            if l4 + 2 > n:
                break
            if nh in (0, 43, 60):
                nh, l4 = p[l4], l4 + (p[l4 + 1] + 1) * 8
            elif nh == 51:
                nh, l4 = p[l4], l4 + (p[l4 + 1] + 2) * 4
            else:
                break
        src, dst = p[off + 8:off + 24], p[off + 24:off + 40]
        if nh in (6, 17, 132) and l4 + 4 <= n:
            ports = p[l4:l4 + 4]
            return bytes([1, nh]) + _pair(src + ports[:2], dst + ports[2:])
        return b"\2" + _pair(src, dst)
    return b"\3" + _pair(p[0:6], p[6:12])


def ref_hash(p: bytes) -> int:
    """Multiply-xorshift over little-endian words, MurmurHash3's fmix64."""
    key = ref_key(p)
    h = 0x243F6A8885A308D3 ^ len(key)
    padded = key + b"\0" * (-len(key) % 8)
    for i in range(0, len(padded), 8):
        (w,) = struct.unpack_from("<Q", padded, i)
        h = ((h ^ w) * 0x9E3779B97F4A7C15) & M64
        h ^= h >> 29
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    h ^= h >> 33
    return h >> 32


# --- Frame makers --------------------------------------------------------------

MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def eth(dst: bytes, src: bytes, etype: int, payload: bytes, tags=()) -> bytes:
    head = dst + src
    for tpid, vid in tags:
        head += struct.pack("!HH", tpid, vid)
    return head + struct.pack("!H", etype) + payload


def ipv4(src: bytes, dst: bytes, proto: int, l4: bytes, frag: int = 0) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, frag, 64, proto, 0,
                       src, dst) + l4


def ipv6(src: bytes, dst: bytes, nh: int, rest: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(rest), nh, 64, src, dst) + rest


def l4(sport: int, dport: int, size: int = 16) -> bytes:
    return struct.pack("!HH", sport, dport) + bytes(size)


def frame(v: int, proto: int, src: bytes, dst: bytes, sport: int, dport: int,
          tags=(), smac=MAC_A, dmac=MAC_B) -> bytes:
    if v == 4:
        return eth(dmac, smac, 0x0800, ipv4(src, dst, proto, l4(sport, dport)), tags)
    return eth(dmac, smac, 0x86DD, ipv6(src, dst, proto, l4(sport, dport)), tags)


def reverse(v, proto, src, dst, sport, dport, tags=()):
    return frame(v, proto, dst, src, dport, sport, tags, smac=MAC_B, dmac=MAC_A)


def random_flow(rng: random.Random, v: int, proto: int):
    alen = 4 if v == 4 else 16
    return (v, proto, rng.randbytes(alen), rng.randbytes(alen),
            rng.randrange(65536), rng.randrange(65536))


# --- The hash ----------------------------------------------------------------------

@pytest.mark.parametrize("v", [4, 6])
@pytest.mark.parametrize("proto", [6, 17, 132])
def test_both_directions_hash_alike(v, proto):
    rng = random.Random(v * 1000 + proto)
    for _ in range(300):
        f = random_flow(rng, v, proto)
        assert flow_hash(frame(*f)) == flow_hash(reverse(*f))


@pytest.mark.parametrize("v", [4, 6])
def test_ports_count_for_tcp_and_udp_only(v):
    rng = random.Random(v)
    _, _, src, dst, _, _ = random_flow(rng, v, 6)
    for proto in (6, 17, 132):
        assert flow_hash(frame(v, proto, src, dst, 1, 2)) != flow_hash(
            frame(v, proto, src, dst, 1, 3))
    # ICMP (1 / 58): the same addresses hash alike whatever follows them.
    icmp = 1 if v == 4 else 58
    assert flow_hash(frame(v, icmp, src, dst, 1, 2)) == flow_hash(
        frame(v, icmp, dst, src, 7, 9))


def test_ipv4_fragments_of_a_flow_hash_alike():
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    first = eth(MAC_B, MAC_A, 0x0800, ipv4(src, dst, 17, l4(53, 4000), frag=0x2000))
    middle = eth(MAC_B, MAC_A, 0x0800, ipv4(src, dst, 17, bytes(40), frag=0x2000 | 3))
    last = eth(MAC_B, MAC_A, 0x0800, ipv4(src, dst, 17, bytes(40), frag=6))
    backward = eth(MAC_A, MAC_B, 0x0800, ipv4(dst, src, 17, bytes(40), frag=9))
    assert len({flow_hash(f) for f in (first, middle, last, backward)}) == 1
    assert ref_key(first) == b"\2" + src + dst


def test_ipv6_fragments_and_extension_headers():
    src, dst = bytes(range(16)), bytes(range(16, 32))
    # Fragment header (44): first fragment carries ports, later ones do not.
    first = eth(MAC_B, MAC_A, 0x86DD, ipv6(src, dst, 44, bytes([17, 0, 0, 1, 0, 0, 0, 7])
                                           + l4(53, 4000)))
    later = eth(MAC_B, MAC_A, 0x86DD, ipv6(src, dst, 44, bytes([17, 0, 0, 0x99, 0, 0, 0, 7])
                                           + bytes(32)))
    assert flow_hash(first) == flow_hash(later)
    assert ref_key(first)[0] == 2
    # Hop-by-hop (0) then destination options (60) then TCP: ports are used.
    chain = bytes([60, 0]) + bytes(6) + bytes([6, 1]) + bytes(14) + l4(80, 5555)
    f = eth(MAC_B, MAC_A, 0x86DD, ipv6(src, dst, 0, chain))
    back = eth(MAC_A, MAC_B, 0x86DD, ipv6(dst, src, 0, chain[:24] + l4(5555, 80)))
    assert ref_key(f)[:2] == bytes([1, 6])
    assert flow_hash(f) == flow_hash(back) == ref_hash(f)


@pytest.mark.parametrize("tags", [[(0x8100, 7)], [(0x88A8, 5), (0x8100, 7)],
                                  [(0x9100, 1), (0x8100, 2)]])
def test_vlan_tags_are_skipped(tags):
    rng = random.Random(len(tags))
    f = random_flow(rng, 4, 6)
    tagged, untagged = frame(*f, tags=tags), frame(*f)
    assert ref_key(tagged) == ref_key(untagged)
    assert flow_hash(tagged) == flow_hash(untagged) == flow_hash(reverse(*f, tags=tags))


def test_non_ip_hashes_the_macs_symmetrically():
    arp = eth(MAC_B, MAC_A, 0x0806, bytes(28))
    assert flow_hash(arp) == flow_hash(eth(MAC_A, MAC_B, 0x0806, bytes(28)))
    assert flow_hash(arp) != flow_hash(eth(MAC_B, bytes(6), 0x0806, bytes(28)))
    # An IPv4 ethertype with a version nibble that is not 4 is not IP.
    bogus = eth(MAC_B, MAC_A, 0x0800, bytes([0x65]) + bytes(40))
    assert ref_key(bogus)[0] == 3 and flow_hash(bogus) == ref_hash(bogus)


@pytest.mark.parametrize("v", [4, 6])
def test_runts_and_cut_headers_of_every_length(v):
    """Every cut of real frames to 0..64 bytes hashes as the reference
    says, and the bytes after the cut never matter: the cut is hashed in
    place inside buffers whose tail is all 0x00, then all 0xff."""
    rng = random.Random(64 + v)
    frames = [frame(*random_flow(rng, v, 6), tags=t) for t in ((), [(0x8100, 3)],
                                                               [(0x88A8, 1), (0x8100, 2)])]
    for f in frames:
        f = f + bytes(max(0, 70 - len(f)))
        for n in range(0, 65):
            cut = f[:n]
            assert flow_hash(cut) == ref_hash(cut), (n, cut.hex())
            for tail in (b"\0", b"\xff"):
                buf = ffi.from_buffer("uint8_t[]", cut + tail * 64)
                assert lib.rss_hash(buf, n) == ref_hash(cut), (n, tail)


def test_runts_through_the_app(no_leaks):
    rss = wire(RSS({}), ["input"], ["a", "b"])
    frames = [bytes([i]) * n for i, n in enumerate(range(65))]
    fill(rss.input["input"], frames)
    rss.push()
    out = drain(rss.output["a"]) + drain(rss.output["b"])
    assert sorted(out) == sorted(frames)


frames_strategy = st.one_of(
    st.binary(max_size=128),
    st.builds(lambda seed, v, proto, tags, cut: frame(
        *random_flow(random.Random(seed), v, proto), tags=tags)[:cut],
        st.integers(0, 2**32), st.sampled_from([4, 6]), st.sampled_from([1, 6, 17, 58, 132]),
        st.sampled_from([(), [(0x8100, 1)], [(0x88A8, 1), (0x8100, 2)]]),
        st.integers(0, 200)),
    st.builds(lambda head, rest: head + rest,
              st.sampled_from([MAC_A + MAC_B + b"\x08\x00\x45", MAC_A + MAC_B + b"\x86\xdd\x60",
                               MAC_A + MAC_B + b"\x81\x00\x00\x01\x08\x00\x46"]),
              st.binary(max_size=100)),
)


@settings(max_examples=600, deadline=None)
@given(frames_strategy)
def test_c_hash_equals_the_python_reference(f):
    assert flow_hash(f) == ref_hash(f)


# --- Spreading ------------------------------------------------------------------

def test_port_order_is_natural():
    assert port_order(["out10", "out2", "b", "a", "out1"]) == ["a", "b", "out1", "out2", "out10"]


@pytest.mark.parametrize("n", [2, 3, 4])
def test_flows_spread_evenly(n, no_leaks):
    """20000 random flows (v4/v6, TCP/UDP) over n outputs: chi-square with
    n - 1 degrees of freedom stays under the 99.9% point."""
    rng = random.Random(1234 + n)
    names = [f"q{i}" for i in range(n)]
    rss = wire(RSS({}), ["input"], names)
    counts = [0] * n
    for _ in range(20):
        flows = [random_flow(rng, rng.choice((4, 6)), rng.choice((6, 17))) for _ in range(1000)]
        fill(rss.input["input"], [frame(*f) for f in flows])
        rss.push()
        for i, name in enumerate(names):
            counts[i] += len(drain(rss.output[name]))
    total = sum(counts)
    assert total == 20000
    expected = total / n
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    assert chi2 < {2: 10.83, 3: 13.82, 4: 16.27}[n], counts


@pytest.mark.parametrize("n", [2, 3, 4])
def test_sequential_flows_spread_evenly(n):
    """Flows that differ in a few low bits (10.0.x.y to one server, source
    ports counting up), the case a weak hash spreads badly."""
    counts = [0] * n
    server = bytes([192, 168, 1, 1])
    for i in range(12000):
        client = bytes([10, 0, i >> 8 & 255, i & 255])
        f = frame(4, 6, client, server, 1024 + i % 64, 80)
        counts[output_index(flow_hash(f), n)] += 1
    expected = 12000 / n
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    assert chi2 < {2: 10.83, 3: 13.82, 4: 16.27}[n], counts


@pytest.mark.parametrize("v", [4, 6])
def test_a_flow_and_its_reverse_land_on_one_output(v, no_leaks):
    rng = random.Random(v)
    names = ["out0", "out1", "out2"]
    rss = wire(RSS({}), ["input"], names)
    flows = [random_flow(rng, v, rng.choice((6, 17))) for _ in range(300)]
    fill(rss.input["input"], [frame(*f) for f in flows] + [reverse(*f) for f in flows])
    rss.push()
    where = {}
    for i, name in enumerate(names):
        for b in drain(rss.output[name]):
            where.setdefault(flow_hash(b), set()).add(i)
    assert sum(len(s) for s in where.values()) == len(where)
    # The output is the one output_index names.
    for f in flows:
        b = frame(*f)
        assert output_index(flow_hash(b), 3) in where[flow_hash(b)]


def test_full_output_drops_and_counts(no_leaks):
    rss = wire(RSS({}), ["input"], ["only"])
    out = rss.output["only"]
    fill(out, [b"x" * 60] * 1000)
    fill(rss.input["input"], [b"y" * 60] * 100)
    rss.push()
    assert out.counters["txdrop"] == 1000 + 100 - 1023
    assert rss.input["input"].empty()
    drain(out)


def test_no_outputs_frees_and_counts(no_leaks):
    rss = wire(RSS({}), ["input"], [])
    fill(rss.input["input"], [b"z" * 60] * 10)
    rss.push()
    assert rss.input["input"].empty() and rss.stats["nooutput"] == 10


def test_every_input_is_spread(no_leaks):
    rss = wire(RSS({}), ["a", "b"], ["x", "y"])
    fill(rss.input["a"], [bytes([1]) * 60] * 5)
    fill(rss.input["b"], [bytes([2]) * 60] * 7)
    rss.push()
    assert len(drain(rss.output["x"]) + drain(rss.output["y"])) == 12


def test_unknown_config_key_is_refused():
    with pytest.raises(config.ConfigError, match="unknown config key"):
        config.validate("rss", RSS, {"outputs": 2})


# --- Through snabbpy run ---------------------------------------------------------

def test_example_graph_runs(tmp_path, shm):
    result = subprocess.run(
        [*SNABBPY, "run", str(ROOT / "configs" / "rss.yaml"), "--duration", "1"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sent = {}
    for line in result.stdout.splitlines():
        words = line.split()
        if "sent on" in line:
            sent[words[3]] = int(words[0].replace(",", ""))
    assert sent["flows.output"] > 0 and sent["rss.out0"] > 0 and sent["rss.out1"] > 0, sent
    assert sent["rss.out0"] + sent["rss.out1"] == sent["flows.output"], sent
    assert "outputs by hash: out0, out1" in result.stdout


def test_flows_makes_both_directions_of_each_flow(no_leaks):
    gen = wire(Flows({"flows": 50, "size": 64, "seed": 3}), [], ["output"])
    gen.pull()
    frames = drain(gen.output["output"])
    assert len(frames) == 1023 and {len(f) for f in frames} == {64}
    assert len({flow_hash(f) for f in frames}) == 50
    assert all(ref_key(f)[:2] == bytes([1, 17]) for f in frames)
    assert frames[0] != frames[1] and flow_hash(frames[0]) == flow_hash(frames[1])


@pytest.mark.parametrize("conf, what", [({"flows": 0}, "flows 0"), ({"size": 41}, "size 41")])
def test_flows_refuses_bad_config(conf, what):
    full = config.validate("gen", Flows, conf)
    with pytest.raises(config.ConfigError, match=what):
        Flows(full)


def _graph(outputs: list[str]) -> config.Config:
    c = config.new()
    config.app(c, "gen", Flows, {"flows": 256})
    config.app(c, "rss", RSS, {})
    config.link(c, "gen.output -> rss.input")
    for name in outputs:
        config.app(c, f"sink_{name}", config.resolve_class("basic.Sink"), {})
        config.link(c, f"rss.{name} -> sink_{name}.input")
    return c


def test_in_an_engine_reconfigured_to_more_outputs(no_leaks):
    """Two outputs, then four (declared out of order): every packet the
    generator sent reaches one sink, and nothing is left held."""
    from snabbpy.core.engine import Engine

    engine = Engine()
    try:
        engine.configure(_graph(["q1", "q0"]))
        for _ in range(5):
            engine.breathe()
        assert engine.apps["rss"].order == ["q0", "q1"]
        engine.configure(_graph(["q3", "q1", "q0", "q2"]))
        for _ in range(5):
            engine.breathe()
        assert engine.apps["rss"].order == ["q0", "q1", "q2", "q3"]
        links = engine.links
        into = links["gen.output -> rss.input"].counters["txpackets"]
        out = [links[f"rss.q{i} -> sink_q{i}.input"].counters["txpackets"] for i in range(4)]
        assert all(n > 0 for n in out), out
        assert sum(out) == into, (out, into)
    finally:
        engine.stop()


def test_selftest_passes(no_leaks, capsys):
    import snabbpy.apps.rss

    snabbpy.apps.rss.selftest()
    assert "rss selftest: ok" in capsys.readouterr().out


def test_selftest_through_the_cli():
    result = subprocess.run([*SNABBPY, "selftest", "apps.rss"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "rss selftest: ok" in result.stdout, result.stderr
