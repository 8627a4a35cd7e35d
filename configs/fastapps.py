"""Three example apps, each in the three styles a user can write them in.

==================  ====================  ======================  ===================
app                 per packet            vector (numpy)          JIT (numba)
==================  ====================  ======================  ===================
swap dst/src MAC    ``myapps:MacSwap``    ``MacSwapVector``       ``MacSwapJIT``
IPv4 TTL - 1        ``TTLDecrement``      ``TTLDecrementVector``  ``TTLDecrementJIT``
learning L2 switch  ``L2Switch``          ``L2SwitchVector``      ``L2SwitchJIT``
==================  ====================  ======================  ===================

Name them in a graph as ``class: "fastapps:MacSwapVector"`` (modules next to
the YAML file are found); ``Frames`` generates the IPv4 frames they need.
The three forms of one app give the same output byte for byte (the tests
check it); docs/fast-apps.md puts them side by side.

What the apps do:

- MacSwap swaps the Ethernet destination and source addresses; frames
  shorter than 14 bytes are freed (``runts``).
- TTLDecrement forwards IPv4 frames (EtherType 0x0800 right after the MACs,
  version 4, IHL >= 5, at least 34 bytes) with TTL >= 2, after lowering the
  TTL by one and updating the header checksum incrementally (RFC 1624,
  eqn. 3); every other frame is freed (``dropped``).
- L2Switch is a learning switch. A port ``X`` is the input ``X`` and the
  output ``X``. For each input, its packets are forwarded with the MAC table
  as it stood before them (so a batch is one lookup), then their source MACs
  are learnt on that port (the last one wins; at most ``max_macs`` entries,
  MACs beyond that are not learnt). A frame to a known unicast MAC goes to
  its port (freed, ``filtered``, when that is the input port); a frame to a
  broadcast, multicast or unknown MAC is flooded to every other port.
"""

from __future__ import annotations

import struct

# The per-packet MacSwap is the one the README teaches, in configs/myapps.py.
from myapps import MacSwap  # noqa: F401  (re-exported: fastapps:MacSwap)

from snabbpy.core import packet
from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import ffi, lib

ETH_IPV4 = 0x0800
TTL_OFFSET = 22  # TTL and protocol: one 16-bit word of the IPv4 header
CSUM_OFFSET = 24


# --------------------------------------------------------------------------
# Frames: the traffic the examples need


def host_mac(n: int) -> bytes:
    """The MAC of test host number ``n``: 02:00:hh:hh:hh:hh (locally
    administered, unicast)."""
    return b"\x02\x00" + struct.pack(">I", n & 0xFFFFFFFF)


def ipv4_checksum(header: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``header`` (even length) whose
    checksum field is zero."""
    s = sum(struct.unpack(f">{len(header) // 2}H", header))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_frame(dst: bytes, src: bytes, size: int = 64, ttl: int = 64, ident: int = 0) -> bytes:
    """An Ethernet + IPv4 + UDP frame of ``size`` bytes (at least 42) with a
    correct IPv4 header checksum."""
    if size < 42:
        raise ValueError(f"an IPv4/UDP frame needs 42 bytes, asked for {size}")
    total = size - 14
    ip = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, ident & 0xFFFF, 0, ttl,
                               17, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])))
    struct.pack_into(">H", ip, 10, ipv4_checksum(bytes(ip)))
    udp = struct.pack(">HHHH", 1024, 1024, total - 20, 0)
    return dst + src + b"\x08\x00" + bytes(ip) + udp + bytes(size - 42)


def template_frames(size: int, src_hosts: int, src_base: int, dst_hosts: int,
                    dst_base: int, ttl: int) -> list[bytes]:
    """The frames ``Frames`` repeats: frame k goes from host
    ``src_base + k % src_hosts`` to host ``dst_base + (k * 7919) % dst_hosts``
    (7919 is prime, so every pair of a small set appears), as many frames
    as the larger host set."""
    n = max(src_hosts, dst_hosts)
    return [
        ipv4_frame(host_mac(dst_base + (k * 7919) % dst_hosts), host_mac(src_base + k % src_hosts),
                   size, ttl, k)
        for k in range(n)
    ]


class Frames(App):
    """Fills every output, in every breath, with copies of a set of IPv4/UDP
    frames, round and round (in C, like basic.Source): frame k goes from
    host ``src_base + k % src_hosts`` to host
    ``dst_base + (k * 7919) % dst_hosts`` (see ``host_mac``)."""

    config = {
        "size": Param(int, default=64, doc="frame length in bytes (42..10240)"),
        "ttl": Param(int, default=64, doc="IPv4 TTL of every frame (0..255)"),
        "src_hosts": Param(int, default=1, doc="distinct source MACs"),
        "src_base": Param(int, default=0, doc="host number of the first source MAC"),
        "dst_hosts": Param(int, default=1, doc="distinct destination MACs"),
        "dst_base": Param(int, default=1, doc="host number of the first destination MAC"),
    }

    def __init__(self, conf: dict) -> None:
        if not 42 <= conf["size"] <= packet.PAYLOAD_SIZE:
            raise ConfigError(f"size {conf['size']} is outside 42..{packet.PAYLOAD_SIZE}")
        if not 0 <= conf["ttl"] <= 255:
            raise ConfigError(f"ttl {conf['ttl']} is outside 0..255")
        for key in ("src_hosts", "dst_hosts"):
            if not 1 <= conf[key] <= 1 << 20:
                raise ConfigError(f"{key} {conf[key]} is outside 1..{1 << 20}")
        for key in ("src_base", "dst_base"):
            if not 0 <= conf[key] < 1 << 32:
                raise ConfigError(f"{key} {conf[key]} is outside 0..{(1 << 32) - 1}")
        frames = template_frames(conf["size"], conf["src_hosts"], conf["src_base"],
                                 conf["dst_hosts"], conf["dst_base"], conf["ttl"])
        self.packets = [packet.from_bytes(f) for f in frames]
        self._array = ffi.new("struct packet *[]", self.packets)
        self._outputs: list = []

    def link(self) -> None:
        self._outputs = [(o.c, ffi.new("uint32_t *")) for o in self.output.values()]

    def pull(self) -> None:
        for o, nxt in self._outputs:
            lib.basic_repeat(o, self._array, len(self.packets), nxt)

    def stop(self) -> None:
        for p in self.packets:
            packet.free(p)
        self.packets = []


# --------------------------------------------------------------------------
# Per-packet forms (the reference the other two are tested against)


def ttl_decrement(header) -> bool:
    """Lowers the TTL of the IPv4 frame in ``header`` (its first 34 bytes,
    writable) by one and patches the checksum (RFC 1624 eqn. 3); returns
    False, changing nothing, when the frame is to be dropped."""
    if (header[12] << 8 | header[13]) != ETH_IPV4 or header[14] >> 4 != 4 \
            or header[14] & 15 < 5 or header[22] <= 1:
        return False
    old = header[22] << 8 | header[23]
    new = old - 0x100
    s = (~(header[24] << 8 | header[25]) & 0xFFFF) + (~old & 0xFFFF) + new
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    s = ~s & 0xFFFF
    header[22] = new >> 8
    header[24], header[25] = s >> 8, s & 0xFF
    return True


class TTLDecrement(App):
    """IPv4 TTL decrement, one packet at a time (see the module docstring)."""

    counters = ("forwarded", "dropped")

    def push(self):
        i, o = self.input["input"], self.output["output"]
        receive, transmit, free, view = i.receive, o.transmit, packet.free, packet.view
        forwarded = dropped = 0
        for _ in range(min(i.nreadable(), o.nwritable())):
            p = receive()
            if p.length >= 34 and ttl_decrement(memoryview(view(p, 34))):
                transmit(p)
                forwarded += 1
            else:
                free(p)
                dropped += 1
        self.stats.add("forwarded", forwarded)
        self.stats.add("dropped", dropped)


L2_COUNTERS = ("forwarded", "flooded", "filtered", "runts")


def switch_ports(app: App) -> list[str]:
    """The ports of a switch app: its outputs in order, then any input that
    has no output of its name. Port numbers index this list."""
    names = list(app.output)
    return names + [n for n in app.input if n not in app.output]


class L2Switch(App):
    """A learning L2 switch, one packet at a time (see the module
    docstring)."""

    config = {"max_macs": Param(int, default=65536, doc="MAC table size")}
    counters = L2_COUNTERS

    def __init__(self, conf: dict) -> None:
        if not 1 <= conf["max_macs"] <= 1 << 24:
            raise ConfigError(f"max_macs {conf['max_macs']} is outside 1..{1 << 24}")
        self.max_macs = conf["max_macs"]
        self.table: dict[bytes, int] = {}
        self.ports: list[str] = []

    def link(self) -> None:
        self.ports = switch_ports(self)

    def push(self):
        outs = [self.output.get(n) for n in self.ports]
        table, view, free, clone = self.table, packet.view, packet.free, packet.clone
        counts = dict.fromkeys(L2_COUNTERS, 0)
        for name, i in self.input.items():
            port = self.ports.index(name)
            others = [o for k, o in enumerate(outs) if k != port and o is not None]
            learnt: dict[bytes, int] = {}
            for _ in range(i.nreadable()):
                p = i.receive()
                if p.length < 14:
                    free(p)
                    counts["runts"] += 1
                    continue
                macs = view(p, 12)[:]
                dst, src = macs[:6], macs[6:]
                learnt[src] = port
                to = -1 if dst[0] & 1 else table.get(dst, -1)
                if to == port or (to >= 0 and outs[to] is None):
                    free(p)
                    counts["filtered"] += 1
                elif to >= 0:
                    outs[to].transmit(p)
                    counts["forwarded"] += 1
                elif not others:
                    free(p)
                    counts["filtered"] += 1
                else:
                    for o in others[:-1]:
                        o.transmit(clone(p))
                    others[-1].transmit(p)
                    counts["flooded"] += 1
            for mac, port_of in learnt.items():
                if mac in table or len(table) < self.max_macs:
                    table[mac] = port_of
        for k, v in counts.items():
            self.stats.add(k, v)
