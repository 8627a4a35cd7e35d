"""Guest offloads on a packed ring: packed_device.c's TX shares the split
ring's copy and offload code (device_ring_tx.c, device_ring_offload.c), so
a GSO frame is cut into segments, a partial checksum finished, a GSO frame
that does not fit the link waits in the ring, and without the offload
flags such headers are refused as bad_header."""

import struct

from guarded_memory import GPA, GuardedMemory

from snabbpy.core import packet
from snabbpy.core.link import Link
from snabbpy.core.native import ffi, lib
from snabbpy.lib.virtio.constants import NetHdrFlag
from snabbpy.lib.virtio.net_header import NetHeader
from snabbpy.testing.gso import GSO_TCPV4, checksums_ok, segment, tcp_frame

SIZE = 16
MEM = GuardedMemory()
RING, DRIVER, DEVICE = GPA[0], GPA[0] + 0x1000, GPA[0] + 0x1004
DATA = GPA[0] + 0x2000  # frames from here on, across both regions
OFFLOADS = lib.DR_F_VERSION_1 | lib.DR_F_CSUM | lib.DR_F_TSO4 | lib.DR_F_TSO6
AVAIL, USED = lib.PK_DESC_F_AVAIL, lib.PK_DESC_F_USED


def post(chains: list[bytes]) -> None:
    """Makes each header+frame one available descriptor of a fresh ring
    (slot i, id i); the other slots are not available."""
    at = DATA
    for i in range(SIZE):
        if i < len(chains):
            MEM.write(at, chains[i])
            desc = struct.pack("<QIHH", at, len(chains[i]), i, AVAIL)
            at += len(chains[i])
        else:
            desc = struct.pack("<QIHH", 0, 0, 0, AVAIL | USED)
        MEM.write(RING + 16 * i, desc)
    MEM.write(DRIVER, bytes(8))


def start(flags: int):
    q, s = ffi.new("struct pd_queue *"), ffi.new("struct dr_stats *")
    assert lib.pd_queue_start(q, MEM.c, s, SIZE, RING, DRIVER, DEVICE, 0x80008000, flags) == 0
    return q, s


def drain(link: Link) -> list[bytes]:
    got = []
    while not link.empty():
        p = link.receive()
        got.append(packet.to_bytes(p))
        packet.free(p)
    return got


def gso_header(mss: int) -> bytes:
    return NetHeader(NetHdrFlag.NEEDS_CSUM, GSO_TCPV4, 54, mss, 34, 16).pack()


CSUM_HEADER = NetHeader(NetHdrFlag.NEEDS_CSUM, 0, 0, 0, 34, 16).pack()


def test_gso_and_partial_checksums_on_a_packed_ring(no_leaks):
    big = tcp_frame(bytes(range(256)) * 80, partial=True)  # 20480 bytes of payload
    small = tcp_frame(b"hello" * 99, partial=True)
    post([gso_header(1448) + big, CSUM_HEADER + small])
    q, s = start(OFFLOADS)
    out = Link("out")
    want = segment(big, 1448) + [tcp_frame(b"hello" * 99)]
    assert lib.pd_tx(q, out.c, 1000) == len(want)
    got = drain(out)
    assert got == want and all(checksums_ok(f) for f in got)
    assert (s.gso_frames, s.gso_segments, s.csum_finished) == (1, len(want) - 1, 1)
    assert q.last_avail == q.used_idx == 0x8002  # both chains handed back


def test_a_gso_frame_waits_in_the_packed_ring_until_the_link_has_room(no_leaks):
    frame = tcp_frame(bytes(30000), partial=True)
    post([gso_header(1448) + frame])
    q, s = start(OFFLOADS)
    out = Link("full")
    while lib.link_nwritable(out.c) > 5:
        out.transmit(packet.from_bytes(b"x" * 60))
    assert lib.pd_tx(q, out.c, 1000) == 0
    assert q.last_avail == 0x8000 and s.gso_frames == 0  # still the driver's
    drain(out)
    assert lib.pd_tx(q, out.c, 1000) == len(segment(frame, 1448))
    assert drain(out) == segment(frame, 1448) and q.last_avail == 0x8001


def test_without_offload_flags_the_headers_are_refused(no_leaks):
    frame = tcp_frame(bytes(3000), partial=True)
    post([gso_header(1448) + frame, CSUM_HEADER + frame])
    q, s = start(lib.DR_F_VERSION_1)
    out = Link("plain")
    assert lib.pd_tx(q, out.c, 1000) == 0
    assert out.empty() and s.bad_header == 2 and q.last_avail == 0x8002


def used_at(slot: int) -> tuple[int, int]:
    """(buffer id, flags) of ring slot ``slot`` as the device left it."""
    _, _, buf_id, flags = struct.unpack("<QIHH", MEM.read(RING + 16 * slot, 16))
    return buf_id, flags


def test_in_order_a_gso_frame_left_for_room_ends_the_batch_before_it(no_leaks):
    """In order, one used descriptor hands back the chains taken before a
    GSO frame the link has no room for; the frame and what follows it go
    as the next batch once there is room."""
    small = CSUM_HEADER + tcp_frame(b"hi" * 40, partial=True)
    big = tcp_frame(bytes(30000), partial=True)
    post([small, small, gso_header(1448) + big, small])
    q, s = start(OFFLOADS | lib.PD_F_IN_ORDER)
    out = Link("room for ten")
    while lib.link_nwritable(out.c) > 10:
        out.transmit(packet.from_bytes(b"x" * 60))
    assert lib.pd_tx(q, out.c, 1000) == 2  # the GSO frame's 21 segments do not fit
    assert q.last_avail == q.used_idx == 0x8002 and s.gso_frames == 0
    assert used_at(0) == (1, AVAIL | USED)  # names the second chain
    assert used_at(1) == (1, AVAIL)  # the second slot: still as the driver wrote it
    assert used_at(2)[1] == AVAIL  # the GSO chain: still the driver's
    drain(out)
    segments = segment(big, 1448)
    assert lib.pd_tx(q, out.c, 1000) == len(segments) + 1
    assert drain(out) == segments + [tcp_frame(b"hi" * 40)]
    assert q.last_avail == q.used_idx == 0x8004 and s.gso_frames == 1
    assert used_at(2) == (3, AVAIL | USED) and used_at(3) == (3, AVAIL)
