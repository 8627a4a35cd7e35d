"""Numbered test frames, and the apps that send and check them.

Frame ``seq`` of ``size`` bytes: broadcast Ethernet from 02:00:00:00:00:01
with the local experimental ethertype 0x88b5, ``seq`` as 4 big-endian bytes,
then a payload pattern that depends on ``seq``, so a frame that comes back
says which one it was and whether it is intact. vguest's selftest sends
them; the VM lab's host side (``vm.hostapps.Responder``) sends them to a
guest that checks them; tests compare captures with them.
"""

from __future__ import annotations

import time

from snabbpy.core import packet
from snabbpy.core.app import App, Param

ETHERNET = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5"
#: Bytes before the payload pattern: Ethernet header and sequence number.
HEAD = len(ETHERNET) + 4
#: The payload pattern repeats every PERIOD sequence numbers.
PERIOD = 251


def frame(seq: int, size: int) -> bytes:
    """Frame ``seq`` (mod 2**32), ``size`` bytes long."""
    head = ETHERNET + (seq % 2**32).to_bytes(4, "big")
    return (head + bytes((seq + i) % PERIOD for i in range(max(0, size - HEAD))))[:size]


def cycled(seq: int, sizes: tuple[int, ...]) -> bytes:
    """Frame ``seq`` of a run whose sizes cycle through ``sizes``: frame
    ``seq`` is ``sizes[seq % len(sizes)]`` bytes long."""
    return frame(seq, sizes[seq % len(sizes)])


def frame_sizes(value: int | list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """One frame size or a list of them (cycled through) as a tuple, each
    checked to be 1..10240 bytes (under 18 a frame has no room for its
    number: the sink compares it with the one due)."""
    sizes = (value,) if isinstance(value, int) else tuple(value)
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int)
                        or not 1 <= s <= packet.PAYLOAD_SIZE for s in sizes):
        raise ValueError(f"frame sizes must be integers 1..{packet.PAYLOAD_SIZE}, "
                         f"got {value!r}")
    return sizes


def sequence(data: bytes) -> int:
    """The sequence number ``data`` carries; -1 if it is too short for one."""
    return int.from_bytes(data[len(ETHERNET):HEAD], "big") if len(data) >= HEAD else -1


class Frames:
    """``frame(seq, size)`` made cheap: the payload pattern repeats every
    251 sequence numbers, so it is built 251 times, not per packet (a TCG
    guest spends its time on per-packet Python)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.patterns = [frame(seq, size)[HEAD:] for seq in range(PERIOD)]

    def get(self, seq: int) -> bytes:
        """Frame ``seq``, byte for byte what ``frame(seq, size)`` returns."""
        head = ETHERNET + (seq % 2**32).to_bytes(4, "big")
        return (head + self.patterns[seq % PERIOD])[:self.size]


class NumberedSource(App):
    """Sends ``count`` numbered frames of ``size`` bytes (or, when ``size``
    is a list, frame ``seq`` as ``cycled(seq, size)``), as the link takes
    them, then nothing.

    With ``window`` and a ``sink`` (a NumberedSink, set after configure) at
    most ``window`` frames are out at a time: a peer that loops packets
    back without flow control (testpmd io) then never finds our receive
    ring full and never drops."""

    inputs, outputs = (), ("output",)

    config = {"count": Param(int), "size": Param(frame_sizes), "window": Param(int, default=0)}

    def __init__(self, conf: dict) -> None:
        self.left, self.seq = conf["count"], 0
        self.frames = [Frames(size) for size in conf["size"]]
        self.window = conf["window"]
        self.sink: NumberedSink | None = None

    def pull(self) -> None:
        out = self.output["output"]
        n = min(self.left, out.nwritable())
        if self.window and self.sink is not None:
            n = min(n, self.window - (self.seq - self.sink.received))
        frames, k = self.frames, len(self.frames)
        for seq in range(self.seq, self.seq + n):
            out.transmit(packet.from_bytes(frames[seq % k].get(seq)))
        self.seq += max(n, 0)
        self.left -= max(n, 0)


class NumberedSink(App):
    """Counts arriving frames: intact ones in sequence, corrupt ones (not a
    numbered frame), and ones out of order, and when the first and last
    arrived; frees them all. A frame too short to carry its number (under
    18 bytes) is compared with the one due next."""

    inputs, outputs = ("input",), ()

    def __init__(self, conf: dict) -> None:
        self.received = self.corrupt = self.out_of_order = 0
        self.first = self.last = 0.0
        self.frames: dict[int, Frames] = {}

    def _frames(self, size: int) -> Frames:
        if size not in self.frames:
            self.frames[size] = Frames(size)
        return self.frames[size]

    def push(self) -> None:
        link = self.input["input"]
        if link.empty():
            return
        now = time.monotonic()
        self.first = self.first or now
        self.last = now
        while not link.empty():
            p = link.receive()
            data = packet.to_bytes(p)
            packet.free(p)
            seq = sequence(data)
            if seq < 0:  # too short to say: compare with the one due next
                seq = self.received % 2**32
            if data != self._frames(len(data)).get(seq):
                self.corrupt += 1
            elif seq != self.received % 2**32:
                self.out_of_order += 1
            self.received += 1
