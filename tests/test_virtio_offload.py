"""The guest TX offloads in C (lib/virtio/offload.c) against the Python
model in snabbpy.testing.gso: every segment byte for byte, every checksum
valid, and hostile headers and frames refused for the right reason with
nothing written outside the output buffer."""

import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from snabbpy.core.native import ffi, lib
from snabbpy.testing.gso import (
    CWR,
    FIN,
    GSO_ECN,
    GSO_TCPV4,
    GSO_TCPV6,
    GSO_UDP,
    PSH,
    checksums_ok,
    ones_sum,
    segment,
    tcp_frame,
)

ALL = lib.DR_F_TSO4 | lib.DR_F_TSO6 | lib.DR_F_ECN
GUARD = b"\xa5" * 64


def plan_of(frame: bytes, gso_type: int, gso_size: int, allowed: int = ALL):
    """(result, plan, frame buffer) from offload_gso_plan."""
    buf = ffi.new("uint8_t[]", frame or b"\0")
    plan = ffi.new("struct gso_plan *")
    return lib.offload_gso_plan(buf, len(frame), gso_type, gso_size, allowed, plan), plan, buf


def c_segments(frame: bytes, gso_type: int, gso_size: int, allowed: int = ALL):
    """The C result code and, when 0, the segments it writes (each into a
    buffer of DR_MAX_PACKET bytes followed by guard bytes, checked)."""
    r, plan, buf = plan_of(frame, gso_type, gso_size, allowed)
    if r:
        return r, []
    out = ffi.new("uint8_t[]", lib.DR_MAX_PACKET + len(GUARD))
    segs = []
    for i in range(plan.nseg):
        ffi.memmove(out + lib.DR_MAX_PACKET, GUARD, len(GUARD))
        n = lib.offload_gso_segment(buf, plan, i, out)
        assert n <= lib.DR_MAX_PACKET
        assert bytes(ffi.buffer(out + lib.DR_MAX_PACKET, len(GUARD))) == GUARD
        segs.append(bytes(ffi.buffer(out, n)))
    return r, segs


def payload(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


options = st.integers(0, 10).map(lambda k: bytes([1]) * (4 * k))  # NOPs, 0 to 40 bytes


@settings(max_examples=150, deadline=None)
@given(size=st.integers(0, 65535 - 120), seed=st.integers(0, 2**32 - 1),
       mss=st.integers(1, 9000), v6=st.booleans(), ip_options=options, tcp_options=options,
       flags=st.integers(0, 255), seq=st.integers(0, 2**32 - 1), ip_id=st.integers(0, 65535),
       vlan=st.none() | st.integers(0, 4095), ecn=st.booleans())
def test_segments_are_the_reference_segments_byte_for_byte(size, seed, mss, v6, ip_options,
                                                          tcp_options, flags, seq, ip_id,
                                                          vlan, ecn):
    frame = tcp_frame(payload(size, seed), v6=v6, seq=seq, flags=flags,
                      ip_options=b"" if v6 else ip_options, tcp_options=tcp_options,
                      ip_id=ip_id, vlan=vlan, partial=True)
    gso_type = (GSO_TCPV6 if v6 else GSO_TCPV4) | (GSO_ECN if ecn else 0)
    r, segs = c_segments(frame, gso_type, mss)
    want = segment(frame, mss)
    headers = len(want[0]) - min(mss, size)
    if headers + min(mss, size) > lib.DR_MAX_PACKET or len(want) > lib.DR_MAX_GSO_SEGMENTS:
        assert r == lib.OFF_BAD_GSO_SIZE
        return
    assert r == 0
    assert segs == want
    assert all(checksums_ok(s) and len(s) <= headers + mss for s in segs)
    tcp_flags = [s[headers - len(tcp_options) - 7] for s in segs]
    assert all(f & (FIN | PSH) == 0 for f in tcp_flags[:-1])
    assert all(f & CWR == 0 for f in tcp_flags[1:])
    assert tcp_flags[-1] & (FIN | PSH) == flags & (FIN | PSH)


def test_a_64k_frame_becomes_1448_byte_segments_in_sequence():
    data = payload(65000, 1)
    frame = tcp_frame(data, seq=2**32 - 100, flags=FIN | PSH | 0x10, partial=True)
    r, segs = c_segments(frame, GSO_TCPV4, 1448)
    assert r == 0 and len(segs) == 45
    assert [len(s) for s in segs] == [54 + 1448] * 44 + [54 + 65000 - 44 * 1448]
    assert b"".join(s[54:] for s in segs) == data
    seqs = [struct.unpack_from("!I", s, 38)[0] for s in segs]
    assert seqs == [(2**32 - 100 + i * 1448) % 2**32 for i in range(45)]  # wraps
    assert [struct.unpack_from("!H", s, 18)[0] for s in segs] == list(range(7, 52))


def test_refusals_name_their_reason():
    v4 = tcp_frame(payload(3000, 2), partial=True)
    v6 = tcp_frame(payload(3000, 2), v6=True, partial=True)
    assert plan_of(v4, GSO_TCPV4, 0)[0] == lib.OFF_BAD_GSO_SIZE
    assert plan_of(v4, GSO_UDP, 1400)[0] == lib.OFF_BAD_GSO_TYPE
    assert plan_of(v4, 5, 1400)[0] == lib.OFF_BAD_GSO_TYPE  # UDP_L4
    assert plan_of(v4, GSO_TCPV4 | GSO_ECN, 1400, lib.DR_F_TSO4)[0] == lib.OFF_BAD_GSO_TYPE
    assert plan_of(v6, GSO_TCPV6, 1400, lib.DR_F_TSO4)[0] == lib.OFF_BAD_GSO_TYPE
    assert plan_of(v4, GSO_TCPV6, 1400)[0] == lib.OFF_BAD_GSO_FRAME  # names the wrong IP
    udp = bytearray(v4)
    udp[23] = 17
    assert plan_of(bytes(udp), GSO_TCPV4, 1400)[0] == lib.OFF_BAD_GSO_FRAME
    fragment = bytearray(v4)
    fragment[20] |= 0x20  # more fragments
    assert plan_of(bytes(fragment), GSO_TCPV4, 1400)[0] == lib.OFF_BAD_GSO_FRAME
    assert plan_of(v4[:1000], GSO_TCPV4, 1400)[0] == lib.OFF_BAD_GSO_FRAME  # IP length lies
    big = tcp_frame(payload(20000, 2), partial=True)
    assert plan_of(big, GSO_TCPV4, 10240)[0] == lib.OFF_BAD_GSO_SIZE  # above a packet
    assert plan_of(big, GSO_TCPV4, 10240 - 54)[0] == 0
    assert plan_of(tcp_frame(payload(2000, 3)), GSO_TCPV4, 1)[0] == lib.OFF_BAD_GSO_SIZE


def reference_plan_ok(frame: bytes, gso_type: int, gso_size: int) -> bool:
    """Whether a frame is one the device may cut (the rules of offload.h)."""
    if gso_type & 0x7F not in (GSO_TCPV4, GSO_TCPV6) or gso_size == 0 or len(frame) < 14:
        return False
    l3 = 14
    ethertype = frame[12:14]
    if ethertype == b"\x81\x00":
        if len(frame) < 18:
            return False
        l3, ethertype = 18, frame[16:18]
    ip = frame[l3:]
    if gso_type & 0x7F == GSO_TCPV4:
        if ethertype != b"\x08\x00" or len(ip) < 20 or ip[0] >> 4 != 4:
            return False
        ihl, total = (ip[0] & 15) * 4, struct.unpack_from("!H", ip, 2)[0]
        frag = struct.unpack_from("!H", ip, 6)[0] & 0x3FFF
        if ihl < 20 or ip[9] != 6 or frag or total < ihl + 20 or total > len(ip):
            return False
        l4, end = ihl, total
    else:
        if ethertype != b"\x86\xdd" or len(ip) < 40 or ip[0] >> 4 != 6 or ip[6] != 6:
            return False
        plen = struct.unpack_from("!H", ip, 4)[0]
        if plen < 20 or 40 + plen > len(ip):
            return False
        l4, end = 40, 40 + plen
    doff = (ip[l4 + 12] >> 4) * 4
    if doff < 20 or l4 + doff > end:
        return False
    hdrs, pay = l3 + l4 + doff, end - l4 - doff
    nseg = max(1, -(-pay // gso_size))
    return hdrs + min(pay, gso_size) <= lib.DR_MAX_PACKET and nseg <= lib.DR_MAX_GSO_SEGMENTS


@settings(max_examples=400, deadline=None)
@given(size=st.integers(0, 4000), v6=st.booleans(), vlan=st.booleans(),
       cut=st.none() | st.integers(0, 4200),
       pokes=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=4),
       gso_type=st.sampled_from([GSO_TCPV4, GSO_TCPV6, GSO_UDP, 5, 0x81, 0x84, 2, 0x7F]),
       gso_size=st.integers(0, 0xFFFF))
def test_hostile_frames_are_refused_or_cut_as_the_reference_says(size, v6, vlan, cut, pokes,
                                                                gso_type, gso_size):
    frame = bytearray(tcp_frame(payload(size, size), v6=v6, vlan=5 if vlan else None))
    for at, value in pokes:  # lengths, versions, protocols, data offsets that lie
        if at < len(frame):
            frame[at] = value
    frame = bytes(frame[:cut] if cut is not None else frame)
    r, segs = c_segments(frame, gso_type, gso_size)
    assert (r == 0) == reference_plan_ok(frame, gso_type, gso_size)
    if r == 0:
        assert segs == segment(frame, gso_size)


def csum_reference(frame: bytes, start: int, offset: int) -> bytes | None:
    if start >= len(frame) or start + offset + 2 > len(frame):
        return None
    c = ~ones_sum(frame[start:]) & 0xFFFF or 0xFFFF
    at = start + offset
    return frame[:at] + struct.pack("!H", c) + frame[at + 2:]


@settings(max_examples=300, deadline=None)
@given(size=st.integers(0, 3000), v6=st.booleans(), start=st.integers(0, 0xFFFF),
       offset=st.integers(0, 0xFFFF), honest=st.booleans())
def test_needs_csum_is_finished_like_the_reference_and_bounds_checked(size, v6, start,
                                                                     offset, honest):
    frame = tcp_frame(payload(size, 9), v6=v6, partial=True)
    if honest:
        start, offset = (54 if v6 else 34), 16
    buf = ffi.new("uint8_t[]", frame + GUARD)
    r = lib.offload_csum(buf, len(frame), start, offset)
    want = csum_reference(frame, start, offset)
    got = bytes(ffi.buffer(buf, len(frame) + len(GUARD)))
    assert got[len(frame):] == GUARD
    if want is None:
        assert r == lib.OFF_BAD_CSUM and got[:len(frame)] == frame
    else:
        assert r == 0 and got[:len(frame)] == want
    if honest:
        assert checksums_ok(got[:len(frame)])
