"""Random frames for the fast-apps tests: runts, IPv4 (any TTL, bad
versions and header lengths), VLAN-tagged, other EtherTypes, broadcast and
multicast, from a small set of hosts so a switch learns and hits, and any
length up to a packet's payload limit."""

from __future__ import annotations

import random
import struct

from fastapps import host_mac, ipv4_checksum

MAX = 10240
HOSTS = [host_mac(n) for n in range(12)]
BROADCAST = b"\xff" * 6
MULTICAST = b"\x01\x00\x5e\x00\x00\x01"


def mac(rng: random.Random) -> bytes:
    """A destination or source MAC: mostly known hosts, sometimes
    broadcast, multicast or random."""
    r = rng.random()
    if r < 0.75:
        return rng.choice(HOSTS)
    if r < 0.85:
        return BROADCAST
    if r < 0.92:
        return MULTICAST
    return rng.randbytes(6)


def frame(rng: random.Random, length: int | None = None) -> bytes:
    """One random frame of ``length`` bytes (random when None)."""
    if length is None:
        r = rng.random()
        length = rng.randrange(0, 14) if r < 0.1 else \
            rng.randrange(14, 80) if r < 0.7 else rng.randrange(80, MAX + 1)
    kind = rng.random()
    head = mac(rng) + mac(rng)
    if kind < 0.55:  # IPv4, mostly well formed
        ttl = rng.choice([0, 1, 2, 3, 64, 128, 254, 255, rng.randrange(256)])
        vihl = 0x45 if rng.random() < 0.85 else rng.randrange(256)
        ip = bytearray(struct.pack(">BBHHHBBH4s4s", vihl, 0, max(length - 14, 0) & 0xFFFF,
                                   rng.randrange(65536), 0, ttl, 17, 0,
                                   rng.randbytes(4), rng.randbytes(4)))
        checksum = ipv4_checksum(bytes(ip)) if rng.random() < 0.9 else rng.randrange(65536)
        struct.pack_into(">H", ip, 10, checksum)
        body = head + b"\x08\x00" + ip
    elif kind < 0.7:  # VLAN-tagged IPv4: not IPv4 to the TTL app
        body = head + b"\x81\x00" + rng.randbytes(2) + b"\x08\x00\x45" + rng.randbytes(30)
    elif kind < 0.85:
        body = head + rng.choice([b"\x86\xdd", b"\x08\x06", b"\x88\xcc"])
    else:
        body = head + rng.randbytes(2)
    body = body[:length]
    return body + rng.randbytes(length - len(body))


def frames(seed: int, n: int) -> list[bytes]:
    """``n`` random frames."""
    rng = random.Random(seed)
    return [frame(rng) for _ in range(n)]


def every_length(seed: int) -> list[bytes]:
    """One random frame of every length from 0 to the payload limit."""
    rng = random.Random(seed)
    return [frame(rng, n) for n in range(MAX + 1)]
