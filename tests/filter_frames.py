"""Crafted Ethernet frames of many kinds (the filter tests' traffic): IPv4
and IPv6 with TCP, UDP, ICMP, SCTP; ARP; VLAN-tagged; broadcast and
multicast; IP options and fragments; truncated headers. Deterministic."""

from __future__ import annotations

import random
import struct

BROADCAST = bytes(6 * [0xFF])
MACS = [bytes.fromhex(m) for m in ("020000000001", "020000000002", "00163e112233",
                                   "01005e000001", "333300000001")]
IP4 = ["10.0.0.1", "10.1.2.3", "192.168.1.10", "192.168.1.20", "172.16.5.4",
       "8.8.8.8", "224.0.0.251", "255.255.255.255", "127.0.0.1"]
IP6 = ["2001:db8::1", "2001:db8::2", "fe80::1", "ff02::1", "::1", "2001:db8:1::42"]
PORTS = [22, 53, 80, 443, 8080, 1024, 5000, 6000, 65535, 123]


def ip4(text: str) -> bytes:
    """Four bytes of a dotted quad."""
    return bytes(int(x) for x in text.split("."))


def ip6(text: str) -> bytes:
    """Sixteen bytes of an IPv6 address."""
    import ipaddress

    return ipaddress.IPv6Address(text).packed


def ether(dst: bytes, src: bytes, ethertype: int, payload: bytes, vlans=()) -> bytes:
    """An Ethernet frame, optionally with 802.1Q tags (outermost first)."""
    tags = b"".join(struct.pack("!HH", 0x8100, v) for v in vlans)
    return dst + src + tags + struct.pack("!H", ethertype) + payload


def tcp(sport: int, dport: int, flags: int, payload: bytes = b"") -> bytes:
    """A TCP segment (no options)."""
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 8192, 0, 0) + payload


def udp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    """A UDP datagram."""
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp(kind: int, code: int = 0) -> bytes:
    """An ICMP (or ICMPv6) message with a small body."""
    return struct.pack("!BBHI", kind, code, 0, 0x12345678) + b"abcdefgh"


def ipv4(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64, frag: int = 0,
         options: bytes = b"") -> bytes:
    """An IPv4 packet; ``frag`` is the flags+offset field."""
    ihl = 5 + len(options) // 4
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(options) + len(payload), 7,
                       frag, ttl, proto, 0, ip4(src), ip4(dst)) + options + payload


def ipv6(src: str, dst: str, nh: int, payload: bytes, hlim: int = 64) -> bytes:
    """An IPv6 packet."""
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, hlim, ip6(src),
                       ip6(dst)) + payload


def arp(op: int, sha: bytes, spa: str, tpa: str) -> bytes:
    """An ARP request (1) or reply (2) for Ethernet/IPv4."""
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, ip4(spa), bytes(6),
                       ip4(tpa))


def transport(rnd: random.Random, proto: int, sport: int, dport: int, flags: int,
              pad: bytes) -> bytes:
    """A TCP, UDP, SCTP, ICMP (1) or ICMPv6 (58) header and payload."""
    if proto == 6:
        return tcp(sport, dport, flags, pad)
    if proto == 17:
        return udp(sport, dport, pad)
    if proto == 132:
        return struct.pack("!HHII", sport, dport, 0, 0) + pad
    return icmp(rnd.choice([0, 8, 3, 11] if proto == 1 else [128, 129, 135, 136]))


def frames(count: int = 600, seed: int = 12) -> list[bytes]:
    """``count`` frames of every kind above, in a shuffled but fixed order."""
    rnd = random.Random(seed)
    out: list[bytes] = []
    while len(out) < count:
        dst = rnd.choice(MACS + [BROADCAST])
        src = rnd.choice(MACS[:3])
        vlans = rnd.choice([(), (), (), (10,), (20,), (10, 300)])
        kind = rnd.randrange(10)
        pad = bytes(rnd.randrange(0, 400))
        sport, dport = rnd.choice(PORTS), rnd.choice(PORTS)
        flags = rnd.choice([0x02, 0x12, 0x10, 0x18, 0x11, 0x04])
        if kind <= 3:
            proto = rnd.choice([6, 6, 17, 1, 132])
            l4 = transport(rnd, proto, sport, dport, flags, pad)
            frag = rnd.choice([0, 0, 0, 0x4000, 0x2000, 0x0010])
            options = rnd.choice([b"", b"", b"\x01\x01\x01\x00"])
            payload = ipv4(rnd.choice(IP4), rnd.choice(IP4), proto, l4,
                           ttl=rnd.choice([1, 64, 128]), frag=frag, options=options)
            f = ether(dst, src, 0x0800, payload, vlans)
        elif kind <= 6:
            nh = rnd.choice([6, 17, 58, 6])
            l4 = transport(rnd, nh, sport, dport, flags, pad)
            f = ether(dst, src, 0x86DD, ipv6(rnd.choice(IP6), rnd.choice(IP6), nh, l4), vlans)
        elif kind == 7:
            f = ether(BROADCAST if rnd.random() < 0.7 else dst, src, 0x0806,
                      arp(rnd.choice([1, 2]), src, rnd.choice(IP4), rnd.choice(IP4)), vlans)
        elif kind == 8:
            f = ether(dst, src, rnd.choice([0x88B5, 0x88CC, 0x8847]), pad + b"\0" * 46, vlans)
        else:  # truncated: a header cut short, so loads run past the end
            payload = ipv4(rnd.choice(IP4), rnd.choice(IP4), rnd.choice([6, 17]),
                           tcp(sport, dport, flags))
            f = ether(dst, src, rnd.choice([0x0800, 0x86DD]), payload, vlans)
            f = f[:rnd.randrange(12, len(f))]
        out.append(f)
    return out
