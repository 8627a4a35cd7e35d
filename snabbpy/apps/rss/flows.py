"""Flows: generates UDP/IPv4 frames of many flows, to feed RSS."""

from __future__ import annotations

import random
import struct

from snabbpy.core import packet
from snabbpy.core.app import ANY, App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import ffi, lib


def flow_frame(size: int, rng: random.Random) -> bytes:
    """One UDP/IPv4 frame of ``size`` bytes (at least 42) of a random flow."""
    src, dst = rng.randbytes(4), rng.randbytes(4)
    sport, dport = rng.randrange(1024, 65536), rng.randrange(1024, 65536)
    macs = bytes.fromhex("020000000002020000000001")
    udp = struct.pack("!HHHH", sport, dport, size - 34, 0) + bytes(size - 42)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size - 14, 0, 0, 64, 17, 0, src, dst)
    return macs + b"\x08\x00" + ip + udp


class Flows(App):
    """Fills every output in every breath with frames of ``flows`` UDP/IPv4
    flows (random addresses and ports from ``seed``), both directions of
    each, ``size`` bytes each, in turn. For trying RSS and measuring it."""

    inputs, outputs = (), ANY
    links_only = True  # moves what its links give it (core/app.py)
    config = {
        "flows": Param(int, default=1024, doc="number of flows (1..65536)"),
        "size": Param(int, default=64, doc="frame length in bytes (42..10240)"),
        "seed": Param(int, default=1, doc="seed of the addresses and ports"),
    }

    def __init__(self, conf: dict) -> None:
        nflows, size = conf["flows"], conf["size"]
        if not 1 <= nflows <= 65536:
            raise ConfigError(f"Flows: flows {nflows} is outside 1..65536")
        if not 42 <= size <= packet.PAYLOAD_SIZE:
            raise ConfigError(f"Flows: size {size} is outside 42..{packet.PAYLOAD_SIZE}")
        rng = random.Random(conf["seed"])
        self.frames: list[bytes] = []  # both directions of each flow, in turn
        for _ in range(nflows):
            f = flow_frame(size, rng)
            back = f[6:12] + f[0:6] + f[12:26] + f[30:34] + f[26:30] + f[36:38] + f[34:36] + f[38:]
            self.frames += [f, back]
        self._block = ffi.new("uint8_t[]", b"".join(self.frames))
        self._size = size
        self._next = ffi.new("uint32_t *")
        self._outputs: list = []

    def link(self) -> None:
        """Caches the outputs."""
        self._outputs = [o.c for o in self.output.values()]

    def pull(self) -> None:
        """Fills each output with copies of the frames, round and round."""
        for o in self._outputs:
            lib.rss_flows_fill(o, self._block, self._size, len(self.frames), self._next)
