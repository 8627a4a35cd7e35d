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
  its port (freed, ``filtered``, when that is the input port or a port with
  no output); a frame to a broadcast, multicast or unknown MAC is flooded to
  every other port that has an output: the frame itself goes to the last of
  them in order with the forwarded frames, its copies to the others after
  the batch's forwarded frames (``flooded``).
"""

from __future__ import annotations

import struct

import numpy as np

# The per-packet MacSwap is the one the README teaches, in configs/myapps.py.
from myapps import MacSwap  # noqa: F401  (re-exported: fastapps:MacSwap)

from snabbpy.core import packet
from snabbpy.core.app import App, Param
from snabbpy.core.batch import Batch
from snabbpy.core.config import ConfigError
from snabbpy.core.mactable import MacTable
from snabbpy.core.native import ffi, lib

ETH_IPV4 = 0x0800
TTL_OFFSET = 22  # TTL and protocol: one 16-bit word of the IPv4 header
CSUM_OFFSET = 24
DROP, FLOOD = -1, -2  # switch destinations besides a port number


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
    link_types = (1,)  # parses Ethernet frames (snabbpy/core/linktypes.py)

    def push(self):
        i, o = self.input["input"], self.output["output"]
        receive, transmit, free, view = i.receive, o.transmit, packet.free, packet.view
        forwarded = dropped = 0
        for _ in range(min(i.nreadable(), o.nwritable())):
            p = receive()
            if p.length >= 34 and ttl_decrement(view(p, 34)):
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


def l2_decide(table: dict[bytes, int], frame: bytes, port: int, outputs: list[bool]) -> int:
    """Where one frame from ``port`` goes: a port number, DROP or FLOOD."""
    if len(frame) < 14:
        return DROP
    to = -1 if frame[0] & 1 else table.get(bytes(frame[:6]), -1)
    if to < 0:
        return FLOOD
    return DROP if to == port or not outputs[to] else to


def l2_learn(table: dict[bytes, int], sources: list[bytes], port: int, max_macs: int) -> None:
    """Learns ``sources`` (in order) on ``port``, new MACs while there is
    room."""
    for mac in sources:
        if mac in table or len(table) < max_macs:
            table[mac] = port


class L2Switch(App):
    """A learning L2 switch, one packet at a time (see the module
    docstring)."""

    config = {"max_macs": Param(int, default=65536, doc="MAC table size")}
    link_types = (1,)  # parses Ethernet frames (snabbpy/core/linktypes.py)
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
        has = [o is not None for o in outs]
        table, view, free, clone = self.table, packet.view, packet.free, packet.clone
        counts = dict.fromkeys(L2_COUNTERS, 0)
        for name, i in self.input.items():
            port = self.ports.index(name)
            others = [o for k, o in enumerate(outs) if k != port and o is not None]
            sources, flood = [], []
            for _ in range(i.nreadable()):
                p = i.receive()
                if p.length < 14:
                    free(p)
                    counts["runts"] += 1
                    continue
                head = bytes(view(p, 14))
                sources.append(head[6:12])
                to = l2_decide(table, head, port, has)
                if to >= 0:
                    outs[to].transmit(p)
                    counts["forwarded"] += 1
                elif to == FLOOD and others:
                    if len(others) > 1:
                        flood.append(clone(p))
                    others[-1].transmit(p)
                    counts["flooded"] += 1
                else:
                    free(p)
                    counts["filtered"] += 1
            # Copies of the flooded frames follow, on the other outputs.
            for o in others[:-1]:
                for p in flood:
                    o.transmit(clone(p))
            for p in flood:
                free(p)
            l2_learn(table, sources, port, self.max_macs)
        for k, v in counts.items():
            self.stats.add(k, v)


# --------------------------------------------------------------------------
# The work of each app over a whole batch, as pure functions of packet
# memory (``mem``: uint8), payload offsets and lengths (the arrays a Batch
# has). Vector forms are numpy; JIT forms are plain loops numba compiles.

SWAP = np.r_[6:12, 0:6]
U8 = np.uint8
U16 = np.uint16
U32 = np.uint32


class Rows:
    """Packet memory as overlapping rows of ``width`` bytes, row ``i``
    starting at byte ``i``: ``rows(mem, 12)[offsets]`` gathers the first 12
    bytes of every packet as one (n, 12) array, and assigning an (n, 12)
    array to it scatters them back (one fancy index per batch instead of
    one per byte). Each row is one numpy item of ``width`` bytes (a void
    dtype), which numpy gathers and scatters twice as fast as a 2-D
    window of bytes."""

    def __init__(self, mem: np.ndarray, width: int) -> None:
        self.width = width
        self.mem = mem
        self.items = np.ndarray(buffer=mem, dtype=f"V{width}", shape=(len(mem) - width + 1,),
                                strides=(1,))

    def __getitem__(self, offsets: np.ndarray) -> np.ndarray:
        return self.items[offsets].view(np.uint8).reshape(-1, self.width)

    def __setitem__(self, offsets: np.ndarray, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=np.uint8)
        self.items[offsets] = rows.view(f"V{self.width}").reshape(-1)


def rows(mem: np.ndarray, width: int) -> Rows:
    """The :class:`Rows` of ``width`` bytes over ``mem`` (made once)."""
    cached = _ROWS.get(width)
    if cached is None or cached.mem is not mem:
        cached = _ROWS[width] = Rows(mem, width)
    return cached


_ROWS: dict = {}  # width -> Rows: packet memory never moves


def macswap_vector(mem: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Swaps the MACs of every frame of at least 14 bytes; returns which
    to keep (the others are runts)."""
    keep = lengths >= 14
    o = offsets[keep] if not keep.all() else offsets
    window = rows(mem, 12)
    window[o] = window[o][:, SWAP]
    return keep


def ttl_vector(mem: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Decrements the TTL of every IPv4 frame with TTL >= 2 and patches its
    checksum (RFC 1624 eqn. 3); returns which to keep. The first 26 bytes of
    each frame are gathered once and read as big-endian 16-bit words. For a
    TTL decrement eqn. 3 has a constant part: ``~m + m'`` is 0xFEFF
    whatever the word ``m``, so ``HC' = ~(~HC + 0xFEFF)``, and one fold is
    enough (the sum is at most 0x1FEFE)."""
    full = lengths >= 34
    every = bool(full.all())  # the usual case: no copies of the offsets
    window = rows(mem, 26)
    h = window[offsets if every else offsets[full]]
    w = h.view(">u2")
    # version 4 and IHL >= 5 is 0x45 <= byte 14 <= 0x4F (wrapping uint8)
    ok = (w[:, 6] == ETH_IPV4) & (h[:, 14] - U8(0x45) <= 10) & (w[:, 11] >= 0x200)
    if every and ok.all():
        keep, at = ok, offsets
    else:
        keep = np.zeros(len(offsets), bool)
        keep[np.flatnonzero(full)[ok]] = True
        h, at = h[ok], offsets[keep]
        w = h.view(">u2")
    w[:, 11] -= 0x100
    s = (~w[:, 12].astype(U32) & 0xFFFF) + 0xFEFF
    w[:, 12] = ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF
    window[at] = h
    return keep


def port_map(port: int, outputs: np.ndarray) -> np.ndarray:
    """What a MAC table value (a port) means for a frame from ``port``:
    that port, or DROP for ``port`` itself and ports without an output
    (``outputs[k]`` says whether port k has one); the last entry, which
    the lookup's -1 (an unknown or group MAC) picks, is FLOOD, the one
    before it (-2, a runt) DROP."""
    to = np.append(np.where(outputs, np.arange(len(outputs)), DROP), [DROP, FLOOD])
    to[port] = DROP
    return to


def l2_vector(table: MacTable, b: Batch, port: int, to_port: np.ndarray, out=None,
              counts=None) -> np.ndarray:
    """Where each frame of ``b`` from ``port`` goes (a port, DROP or FLOOD),
    with the table as it was (``to_port`` is ``port_map(port, ...)``); then
    learns their source MACs. One C call, ``Batch.switch_mac``: the table's
    port for a destination picks its entry of ``to_port``, an unknown or
    group MAC the last (FLOOD), a runt the one before (DROP); ``counts``,
    if given, adds up the frames that took each entry."""
    return b.switch_mac(table, port, to_port, out=out, counts=counts)


def macswap_kernel(mem, offsets, lengths, index):
    """JIT MacSwap over a batch: swaps the MACs of each frame and sets
    ``index[k]`` to 0 (send) or -1 (a runt: free); returns how many are
    sent. ``index`` is ready for ``Batch.split``."""
    kept = 0
    for k in range(len(offsets)):
        if lengths[k] < 14:
            index[k] = -1
            continue
        index[k] = 0
        kept += 1
        # a slice of the frame: constant indexes into it compile to plain
        # loads and stores (mem[o + j] checks for a negative index each time)
        d = mem[offsets[k]:offsets[k] + 12]
        for j in range(6):
            t = d[j]
            d[j] = d[6 + j]
            d[6 + j] = t
    return kept


def ttl_kernel(mem, offsets, lengths, index):
    """JIT TTL decrement over a batch (RFC 1624 eqn. 3): ``index[k]`` 0
    (send) or -1 (free); returns how many are sent."""
    kept = 0
    for k in range(len(offsets)):
        index[k] = -1
        if lengths[k] < 34:
            continue
        d = mem[offsets[k]:offsets[k] + 26]  # constant indexes: see macswap_kernel
        if d[12] != 8 or d[13] != 0:
            continue
        vihl = d[14]
        if vihl < 0x45 or vihl > 0x4F or d[22] <= 1:  # version 4, IHL >= 5, TTL >= 2
            continue
        # eqn. 3 for TTL - 1: ~m + m' is 0xFEFF (see ttl_vector)
        s = (~(np.uint32(d[24]) << 8 | d[25]) & 0xFFFF) + 0xFEFF
        s = ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF
        d[22] -= 1
        d[24] = s >> 8
        d[25] = s & 0xFF
        index[k] = 0
        kept += 1
    return kept


def l2_route(dest, lengths, link_of, flood_link, counts):
    """JIT: turns the switch's decisions into ``Batch.split`` indexes in
    place (a port -> its link ``link_of[port]``, FLOOD -> ``flood_link``,
    DROP -> -1) and adds forwarded, flooded, filtered and runts to
    ``counts``."""
    for k in range(len(dest)):
        d = dest[k]
        if d >= 0:
            dest[k] = link_of[d]
            counts[0] += 1
        elif d == FLOOD and flood_link >= 0:
            dest[k] = flood_link
            counts[1] += 1
        else:
            dest[k] = -1
            if lengths[k] < 14:
                counts[3] += 1
            else:
                counts[2] += 1


def l2_kernel(mem, offsets, lengths, port, outputs, keys, ports, state, dest):
    """JIT switch over a batch from ``port``: fills ``dest`` (a port, DROP
    or FLOOD) with the table as it was, then learns the source MACs. The
    table is open addressing with linear probing over ``keys`` (a slot holds
    ``mac | 1 << 48``, 0 when empty; a power of two long) and ``ports``;
    ``state[0]`` is the number of MACs in it, ``state[1]`` its limit."""
    n = len(offsets)
    mask = np.uint64(len(keys) - 1)
    used = np.uint64(1 << 48)
    for k in range(n):
        dest[k] = DROP
        if lengths[k] < 14:
            continue
        o = offsets[k]
        if mem[o] & 1:
            dest[k] = FLOOD
            continue
        mac = np.uint64(0)
        for j in range(6):
            mac = mac << np.uint64(8) | np.uint64(mem[o + j])
        h = (mac * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32) & mask
        while keys[h] != 0 and keys[h] != mac | used:
            h = (h + np.uint64(1)) & mask
        if keys[h] == 0:
            dest[k] = FLOOD
        elif ports[h] != port and outputs[ports[h]]:
            dest[k] = ports[h]
    for k in range(n):
        if lengths[k] < 14:
            continue
        o = offsets[k] + 6
        mac = np.uint64(0)
        for j in range(6):
            mac = mac << np.uint64(8) | np.uint64(mem[o + j])
        h = (mac * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32) & mask
        while keys[h] != 0 and keys[h] != mac | used:
            h = (h + np.uint64(1)) & mask
        if keys[h] != 0:
            ports[h] = port
        elif state[0] < state[1]:
            keys[h] = mac | used
            ports[h] = port
            state[0] += 1


# --------------------------------------------------------------------------
# The apps around those functions


def compile_kernel(fn):
    """``fn`` compiled by numba (the apps call it once, at start, on empty
    arrays); without numba, snabbpy.jit's one-line error naming the extra."""
    from snabbpy import jit

    return jit.require().njit(fn)


class _BatchApp(App):
    """input -> output through ``work(mem, offsets, lengths) -> keep``: each
    push takes one batch, sends the kept packets on and frees the rest."""

    counters = ("forwarded", "dropped")
    link_types = (1,)  # parses Ethernet frames (snabbpy/core/linktypes.py)

    def work(self, mem, offsets, lengths):  # pragma: no cover - overridden
        raise NotImplementedError

    def push(self):
        i, o = self.input["input"], self.output["output"]
        n = min(i.nreadable(), o.nwritable())
        if not n:
            return
        b = i.receive_batch(max_packets=n)
        keep = self.work(packet.memory(), b.offsets, b.lengths)
        kept = int(np.count_nonzero(keep))
        if kept == len(b):
            b.transmit(o)
        else:
            b.split(np.where(keep, 0, -1), [o])
        self.stats.add("forwarded", kept)
        self.stats.add("dropped", n - kept)


class MacSwapVector(_BatchApp):
    """MacSwap over a batch with numpy (runts are counted in ``dropped``)."""

    def work(self, mem, offsets, lengths):
        return macswap_vector(mem, offsets, lengths)


class TTLDecrementVector(_BatchApp):
    """TTL decrement over a batch with numpy."""

    def work(self, mem, offsets, lengths):
        return ttl_vector(mem, offsets, lengths)


class _KernelApp(App):
    """input -> output through a compiled ``kernel(mem, offsets, lengths,
    index)``: each breath is one compiled call (snabbpy.jit_breath) that
    receives what the output has room for, runs the kernel and sends the
    packets it kept."""

    kernel = None
    counters = ("forwarded", "dropped")
    link_types = (1,)  # parses Ethernet frames (snabbpy/core/linktypes.py)

    def __init__(self, conf: dict | None = None) -> None:
        from snabbpy import jit
        from snabbpy.jit_breath import Breath

        jit.require()  # without numba: JitUnavailable, in one line
        # Compiled now, at app start.
        self._breath = Breath(type(self).kernel).compile()

    def link(self) -> None:
        self._ports = self._breath.ports(self.input["input"], [self.output["output"]])

    def push(self):
        n, dropped = self._breath(self._ports)
        if n:
            self.stats.add("forwarded", n - dropped)
            self.stats.add("dropped", dropped)


class MacSwapJIT(_KernelApp):
    """MacSwap as a numba-compiled loop over a batch."""

    kernel = staticmethod(macswap_kernel)


class TTLDecrementJIT(_KernelApp):
    """TTL decrement as a numba-compiled loop over a batch."""

    kernel = staticmethod(ttl_kernel)


class _SwitchApp(App):
    """What both batch forms of the learning switch share: the ports, and
    per input the map from decisions to ``split`` indexes. A form decides
    where each frame of a batch goes; one ``split`` sends them (flooded
    frames to the last other port); copies of flooded frames, when there
    are three ports or more, are then sent to the other ports."""

    config = L2Switch.config
    link_types = (1,)  # parses Ethernet frames (snabbpy/core/linktypes.py)
    counters = L2_COUNTERS

    def __init__(self, conf: dict) -> None:
        if not 1 <= conf["max_macs"] <= 1 << 24:
            raise ConfigError(f"max_macs {conf['max_macs']} is outside 1..{1 << 24}")
        self.max_macs = conf["max_macs"]
        self.ports: list[str] = []

    def link(self) -> None:
        self.ports = switch_ports(self)
        outs = [self.output.get(n) for n in self.ports]
        self._has = np.array([o is not None for o in outs], np.bool_)
        self._links = [o for o in outs if o is not None]
        compact = np.cumsum(self._has) - 1
        self._link_of = np.where(self._has, compact, -1).astype(np.int64)
        self._inputs = []
        for name, i in self.input.items():
            port = self.ports.index(name)
            others = [k for k in range(len(outs)) if k != port and outs[k] is not None]
            # split index of each decision; FLOOD (-2) and DROP (-1) pick
            # the last two entries: the last other port's link, and none
            route = np.append(self._link_of, [self._link_of[others[-1]] if others else -1, -1])
            self._inputs.append((i, port, others, port_map(port, self._has), route))

    def _flood(self, b, dest, others: list[int]):
        """Copies of the flooded frames (``dest`` FLOOD) for every other
        port but the last (which gets the frames themselves), taken before
        ``b`` is sent."""
        if len(others) < 2:
            return None
        return b.clone(dest == FLOOD)

    def _send_copies(self, copies, others: list[int]) -> None:
        """The copies, after the batch, to the other ports but the last."""
        if copies is None:
            return
        targets = others[:-1]
        for k in targets[:-1]:
            copies.clone().transmit(self.output[self.ports[k]])
        copies.transmit(self.output[self.ports[targets[-1]]])


class L2SwitchVector(_SwitchApp):
    """The learning switch with numpy and a MacTable (snabbpy.core.mactable):
    per batch, one C call decides every frame, learns the sources and
    counts the outcomes (``l2_vector``), one numpy index turns decisions
    into outputs, and one ``split`` sends them."""

    def __init__(self, conf: dict) -> None:
        super().__init__(conf)
        self.table = MacTable(self.max_macs)
        # made once, written by every batch: its decisions, and how many
        # frames took each entry of port_map (a port, runts, floods)
        self._dest = np.zeros(lib.LINK_MAX_PACKETS, np.int64)
        self._hits = np.zeros(0, np.int64)

    def link(self) -> None:
        super().link()
        self._hits = np.zeros(len(self.ports) + 2, np.int64)

    def push(self):
        forwarded = flooded = filtered = runts = 0
        hits = self._hits
        for i, port, others, to_port, route in self._inputs:
            if i.empty():
                continue
            b = i.receive_batch()
            n = len(b)
            hits[:] = 0
            dest = l2_vector(self.table, b, port, to_port, self._dest, hits)
            *known, nrunts, nflood = hits.tolist()
            copies = self._flood(b, dest, others) if nflood else None
            b.split(route[dest], self._links)
            self._send_copies(copies, others)
            # frames to a known port are forwarded when it is another port
            # with an output (one of others), else filtered
            nfwd = sum(known[k] for k in others)
            if not others:
                nflood = 0
            forwarded += nfwd
            flooded += nflood
            runts += nrunts
            filtered += n - nfwd - nflood - nrunts
        self.stats.add("forwarded", forwarded)
        self.stats.add("flooded", flooded)
        self.stats.add("filtered", filtered)
        self.stats.add("runts", runts)


class L2SwitchJIT(_SwitchApp):
    """The learning switch as a numba-compiled loop over a batch, its MAC
    table an open-addressing hash table in numpy arrays; a second kernel
    turns the decisions into split indexes and counts."""

    def __init__(self, conf: dict) -> None:
        super().__init__(conf)
        size = 1 << max(4, (2 * self.max_macs - 1).bit_length())
        self.keys = np.zeros(size, np.uint64)
        self.port_of = np.zeros(size, np.int32)
        self.state = np.array([0, self.max_macs], np.int64)
        self._dest = np.zeros(lib.LINK_MAX_PACKETS, np.int64)
        self._counts = np.zeros(4, np.int64)
        self._kernel = compile_kernel(l2_kernel)
        self._route = compile_kernel(l2_route)
        # Compile now, at app start, for the types a batch has.
        none, lens = self._dest[:0], np.zeros(0, np.int32)
        self._kernel(np.zeros(1, np.uint8), none, lens, 0, np.zeros(1, np.bool_), self.keys,
                     self.port_of, self.state, none)
        self._route(none, lens, none, -1, self._counts)

    def push(self):
        mem, counts = packet.memory(), self._counts
        counts[:] = 0
        for i, port, others, _, _ in self._inputs:
            if i.empty():
                continue
            b = i.receive_batch()
            dest = self._dest[: len(b)]
            self._kernel(mem, b.offsets, b.lengths, port, self._has, self.keys, self.port_of,
                         self.state, dest)
            copies = self._flood(b, dest, others)
            flood_link = int(self._link_of[others[-1]]) if others else -1
            self._route(dest, b.lengths, self._link_of, flood_link, counts)
            b.split(dest, self._links)
            self._send_copies(copies, others)
        for name, v in zip(L2_COUNTERS, counts.tolist(), strict=True):
            self.stats.add(name, v)
