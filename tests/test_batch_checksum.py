"""The batch checksums, flow hash and encap helpers against per-packet
Python references, on random and hostile frames."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from snabbpy.core import packet
from snabbpy.core.batch import Batch


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(proto: int, payload: bytes, src=b"\x0a\0\0\1", dst=b"\x0a\0\0\2", frag=0,
         ihl=5) -> bytes:
    opts = b"\1" * (ihl * 4 - 20)
    total = 20 + len(opts) + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, frag, 64, proto, 0xBEEF, src,
                    dst) + opts
    return b"\xff" * 12 + b"\x08\x00" + h + payload


def udp(sport: int, dport: int, data: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0x1234) + data


def tcp(sport: int, dport: int, data: bytes) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 2, 0x50, 0x18, 100, 0x1234, 0) + data


def batch_of(frames: list[bytes]) -> Batch:
    return Batch.of([packet.from_bytes(f) for f in frames])


def contents(b: Batch) -> list[bytes]:
    out = [packet.to_bytes(p) for p in b]
    b.free()
    return out


def ref_ipv4(f: bytes) -> bytes | None:
    if len(f) < 34 or f[14] >> 4 != 4:
        return None
    ihl = (f[14] & 15) * 4
    if ihl < 20 or 14 + ihl > len(f):
        return None
    h = bytearray(f[14:14 + ihl])
    h[10:12] = b"\0\0"
    h[10:12] = struct.pack("!H", csum(bytes(h)))
    return f[:14] + bytes(h) + f[14 + ihl:]


def ref_l4(f: bytes) -> bytes | None:
    if len(f) < 34 or f[14] >> 4 != 4:
        return None
    ihl = (f[14] & 15) * 4
    total, _, frag = struct.unpack_from("!HHH", f, 16)
    proto = f[23]
    if ihl < 20 or frag & 0x3FFF or total < ihl or 14 + total > len(f) or proto not in (6, 17):
        return None
    l4 = bytearray(f[14 + ihl:14 + total])
    at = 16 if proto == 6 else 6
    if len(l4) < (20 if proto == 6 else 8):
        return None
    l4[at:at + 2] = b"\0\0"
    pseudo = f[26:34] + struct.pack("!BBH", 0, proto, len(l4))
    c = csum(pseudo + bytes(l4))
    if proto == 17 and c == 0:
        c = 0xFFFF
    l4[at:at + 2] = struct.pack("!H", c)
    return f[:14 + ihl] + bytes(l4) + f[14 + total:]


FRAMES = [
    ipv4(17, udp(53, 4000, b"hello")),
    ipv4(6, tcp(80, 1234, b"GET / HTTP/1.0\r\n")),
    ipv4(6, tcp(80, 1234, b"odd")),
    ipv4(17, udp(1, 2, b""), ihl=7),
    ipv4(17, udp(1, 2, b"frag"), frag=0x2000),
    ipv4(1, b"\x08\0\0\0ping"),
    ipv4(17, udp(9, 9, b"x"))[:40],  # total length past the end
    b"\0" * 12 + b"\x86\xdd" + b"\x60" + b"\0" * 60,
    b"",
    b"\1\2\3",
]


def test_ipv4_and_l4_checksums_match_the_reference() -> None:
    b = batch_of(FRAMES)
    ok4 = b.ipv4_checksum()
    ok = b.l4_checksum()
    got = contents(b)
    for f, g, k4, k in zip(FRAMES, got, ok4, ok, strict=True):
        r4 = ref_ipv4(f)
        assert bool(k4) == (r4 is not None)
        r = ref_l4(r4) if r4 is not None else None
        assert bool(k) == (r is not None)
        assert g == (r or r4 or f)
    # a correct checksum sums to zero over the header
    assert csum(got[0][14:34]) == 0


def test_incremental_update_equals_recomputing() -> None:
    frames = [ref_ipv4(ipv4(17, udp(1, 2, bytes([i]) * i))) for i in range(1, 30)]
    frames = [f[:22] + bytes([ttl]) + f[23:] for f, ttl in zip(frames, range(1, 256, 9),
                                                              strict=False)]
    frames = [ref_ipv4(f) for f in frames]
    b = batch_of(frames)
    old = b.u16be(22)
    new = old - 0x100
    b.set_u16be(22, new)
    assert b.checksum_adjust(24, old, new).all()
    for f, g in zip(frames, contents(b), strict=True):
        dec = f[:22] + bytes([f[22] - 1]) + f[23:]
        assert g == ref_ipv4(dec)


def test_checksum_adjust_skips_short_packets() -> None:
    b = batch_of([b"\1", b"\1\2\3"])
    assert list(b.checksum_adjust(1, 0, 1)) == [False, True]
    assert contents(b)[0] == b"\1"


def test_flow_hash_is_symmetric_and_separates_flows() -> None:
    fwd = ipv4(6, tcp(80, 1234, b""), src=b"\1\2\3\4", dst=b"\5\6\7\x08")
    rev = ipv4(6, tcp(1234, 80, b""), src=b"\5\6\7\x08", dst=b"\1\2\3\4")
    other = ipv4(6, tcp(81, 1234, b""), src=b"\1\2\3\4", dst=b"\5\6\7\x08")
    udp_same = ipv4(17, udp(80, 1234, b""), src=b"\1\2\3\4", dst=b"\5\6\7\x08")
    v6 = b"\0" * 12 + b"\x86\xdd" + bytes([0x60, 0, 0, 0, 0, 8, 17, 64]) + bytes(range(32)) \
        + struct.pack("!HHHH", 5, 6, 8, 0)
    v6r = b"\0" * 12 + b"\x86\xdd" + bytes([0x60, 0, 0, 0, 0, 8, 17, 64]) + bytes(range(16, 32)) \
        + bytes(range(16)) + struct.pack("!HHHH", 6, 5, 8, 0)
    b = batch_of([fwd, rev, other, udp_same, v6, v6r, b"\0" * 60, b""])
    h = b.flow_hash()
    b.free()
    assert h.dtype == np.uint32
    assert h[0] == h[1] and h[4] == h[5]
    assert len({int(h[0]), int(h[2]), int(h[3]), int(h[4])}) == 4
    assert h[6] == 0 and h[7] == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=20), st.integers(0, 70))
def test_hostile_frames_never_fault_and_match_the_references(frames, off) -> None:
    frames = [b"\0" * 12 + b"\x08\x00" + f if i % 2 else f for i, f in enumerate(frames)]
    b = batch_of(frames)
    b.flow_hash()
    b.u32be(off)
    b.bytes(off, 9)
    ok4 = b.ipv4_checksum()
    b.l4_checksum()
    got = contents(b)
    for f, g, k in zip(frames, got, ok4, strict=True):
        r4 = ref_ipv4(f)
        assert bool(k) == (r4 is not None)
        r = ref_l4(r4) if r4 is not None else None
        assert g == (r or r4 or f)


def test_prepend_and_strip_every_packet() -> None:
    frames = [bytes([i]) * (14 + i) for i in range(10)]
    b = batch_of(frames)
    tag = b"\x81\x00\x00\x07"
    b.prepend(tag)
    assert list(b.lengths) == [len(f) + 4 for f in frames]
    mem = packet.memory()
    assert bytes(mem[b.offsets[3]:b.offsets[3] + 4]) == tag
    b.strip(6)
    assert contents(b) == [(tag + f)[6:] for f in frames]
    b = batch_of([b"abc", b"a"])
    try:
        b.strip(2)
        raise AssertionError("strip past a packet's end must fail")
    except RuntimeError as e:
        assert "packet 1" in str(e)
    assert contents(b) == [b"abc", b"a"]  # nothing changed
    b = batch_of([b"x" * (packet.PAYLOAD_SIZE - 2)])
    try:
        b.prepend(b"123")
        raise AssertionError("prepend past the payload limit must fail")
    except RuntimeError:
        pass
    b.free()
