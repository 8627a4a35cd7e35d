"""TCP frames as a guest hands them over with offloads, and a plain Python
model of what the device must make of them: the reference that
``lib/virtio/offload.c`` is tested against, and the checks a capture of
its segments must pass.

``tcp_frame`` builds an Ethernet/IPv4-or-IPv6/TCP frame (IPv4 options and
TCP options allowed); ``segment`` cuts one the way virtio's GSO asks;
``checksums_ok`` says whether a frame's IPv4 and TCP checksums are valid.
"""

from __future__ import annotations

import struct

GSO_TCPV4, GSO_TCPV6, GSO_UDP, GSO_ECN = 1, 4, 3, 0x80
FIN, PSH, CWR = 0x01, 0x08, 0x80
SRC4, DST4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
SRC6, DST6 = bytes(15) + b"\x01", bytes(15) + b"\x02"


def ones_sum(data: bytes) -> int:
    """The 16-bit ones' complement sum of ``data`` (odd length: zero-padded)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def checksum(data: bytes) -> int:
    """The Internet checksum of ``data``."""
    return ~ones_sum(data) & 0xFFFF


def _pseudo(ip: bytes, v6: bool, l4len: int, proto: int = 6) -> bytes:
    if v6:
        return ip[8:40] + struct.pack("!IxxxB", l4len, proto)
    return ip[12:20] + struct.pack("!xBH", proto, l4len)


def tcp_frame(payload: bytes, v6: bool = False, seq: int = 1000, flags: int = 0x18,
              ip_options: bytes = b"", tcp_options: bytes = b"", ip_id: int = 7,
              vlan: int | None = None, partial: bool = False) -> bytes:
    """An Ethernet frame of one TCP segment. ``partial``: the TCP checksum
    field holds only the pseudo-header sum, as a guest using CSUM leaves it."""
    tcp_len = 20 + len(tcp_options)
    tcp = struct.pack("!HHIIBBHHH", 40000, 5001, seq & 0xFFFFFFFF, 1, (tcp_len // 4) << 4,
                      flags, 65535, 0, 0) + tcp_options + payload
    if v6:
        ip = struct.pack("!IHBB", 6 << 28, len(tcp), 6, 64) + SRC6 + DST6
    else:
        ihl = 20 + len(ip_options)
        ip = struct.pack("!BBHHHBBH", 0x40 | ihl // 4, 0, ihl + len(tcp), ip_id, 0x4000, 64,
                         6, 0) + SRC4 + DST4 + ip_options
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    pseudo = ones_sum(_pseudo(ip, v6, len(tcp)))
    c = pseudo if partial else checksum(_pseudo(ip, v6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    eth = b"\x02" * 6 + b"\x04" * 6
    if vlan is not None:
        eth += struct.pack("!HH", 0x8100, vlan)
    return eth + struct.pack("!H", 0x86DD if v6 else 0x0800) + ip + tcp


def _layout(frame: bytes) -> tuple[int, bool]:
    l3 = 18 if frame[12:14] == b"\x81\x00" else 14
    return l3, frame[l3 - 2:l3] == b"\x86\xdd"


def segment(frame: bytes, mss: int) -> list[bytes]:
    """The segments GSO must make of a valid TCP ``frame``: payloads of
    ``mss`` bytes, IP lengths/ids and TCP seq/flags/checksums fixed."""
    l3, v6 = _layout(frame)
    ihl = 40 if v6 else (frame[l3] & 15) * 4
    iplen = 40 + struct.unpack_from("!H", frame, l3 + 4)[0] if v6 else \
        struct.unpack_from("!H", frame, l3 + 2)[0]
    l4 = l3 + ihl
    hdrs = l4 + (frame[l4 + 12] >> 4) * 4
    payload = frame[hdrs:l3 + iplen]
    chunks = [payload[o:o + mss] for o in range(0, len(payload), mss)] or [b""]
    seq0 = struct.unpack_from("!I", frame, l4 + 4)[0]
    ip_id = struct.unpack_from("!H", frame, l3 + 4)[0]
    out = []
    for i, chunk in enumerate(chunks):
        ip = bytearray(frame[l3:l4])
        tcp = bytearray(frame[l4:hdrs]) + chunk
        if v6:
            struct.pack_into("!H", ip, 4, len(tcp))
        else:
            struct.pack_into("!HH", ip, 2, ihl + len(tcp), (ip_id + i) & 0xFFFF)
            struct.pack_into("!H", ip, 10, 0)
            struct.pack_into("!H", ip, 10, checksum(bytes(ip)))
        struct.pack_into("!I", tcp, 4, (seq0 + i * mss) & 0xFFFFFFFF)
        if i < len(chunks) - 1:
            tcp[13] &= ~(FIN | PSH) & 0xFF
        if i > 0:
            tcp[13] &= ~CWR & 0xFF
        struct.pack_into("!H", tcp, 16, 0)
        struct.pack_into("!H", tcp, 16, checksum(_pseudo(bytes(ip), v6, len(tcp)) + tcp))
        out.append(frame[:l3] + bytes(ip) + bytes(tcp))
    return out


def checksums_ok(frame: bytes) -> bool:
    """True if ``frame``'s IPv4 header checksum (if IPv4) and its TCP or UDP
    checksum are valid."""
    l3, v6 = _layout(frame)
    if v6:
        plen = struct.unpack_from("!H", frame, l3 + 4)[0]
        proto, l4, end = frame[l3 + 6], l3 + 40, l3 + 40 + plen
    else:
        ihl = (frame[l3] & 15) * 4
        if ones_sum(frame[l3:l3 + ihl]) != 0xFFFF:
            return False
        proto, l4, end = frame[l3 + 9], l3 + ihl, l3 + struct.unpack_from("!H", frame, l3 + 2)[0]
    l4data = frame[l4:end]
    return ones_sum(_pseudo(frame[l3:l4], v6, len(l4data), proto) + l4data) == 0xFFFF

