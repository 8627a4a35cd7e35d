"""An in-process virtio-net device for vguest's unit tests.

``ModelDevice`` is both the transport (registers: status, features, queue
addresses, notifications, config space) and the device side of the split
rings, written independently of the driver from the virtio 1.x spec, in
plain Python over the shared memory. Tests drive it by hand: take what the
driver transmitted, deliver frames into receive buffers, or write hostile
used-ring entries.
"""

from __future__ import annotations

import struct

from snabbpy.apps.vguest.device import VirtioNetDevice
from snabbpy.apps.vguest.transport import Transport
from snabbpy.core.native import ffi
from snabbpy.lib.virtio import DescFlag, DeviceStatus, Feature, feature_mask
from snabbpy.lib.virtio.ring import legacy_layout, modern_layout

DEFAULT_FEATURES = feature_mask(Feature.VERSION_1, Feature.ANY_LAYOUT, Feature.NET_MRG_RXBUF,
                                Feature.NET_MAC, Feature.NET_STATUS, Feature.NET_CSUM,
                                Feature.RING_EVENT_IDX, Feature.NET_GUEST_TSO4)


def mem(addr: int, n: int):
    """A writable buffer over ``n`` bytes of this process's memory."""
    return ffi.buffer(ffi.cast("uint8_t *", addr), n)


class ModelQueue:
    """The device's view of one split ring."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.desc = self.avail = self.used = 0
        self.last_avail = 0
        self.used_idx = 0
        self.enabled = False

    def _u16(self, addr: int) -> int:
        return struct.unpack("<H", mem(addr, 2)[:])[0]

    def avail_idx(self) -> int:
        """The driver's avail idx."""
        return self._u16(self.avail + 2)

    def pending(self) -> int:
        """Buffers made available and not yet taken by the device."""
        return (self.avail_idx() - self.last_avail) & 0xFFFF

    def descriptor(self, i: int) -> tuple[int, int, int, int]:
        """(addr, len, flags, next) of descriptor ``i``."""
        return struct.unpack("<QIHH", mem(self.desc + 16 * i, 16)[:])

    def pop(self) -> tuple[int, list[tuple[int, int, int]]]:
        """Takes the next available chain: (head, [(addr, len, flags), ...])."""
        slot = self.last_avail % self.size
        head = self._u16(self.avail + 4 + 2 * slot)
        self.last_avail = (self.last_avail + 1) & 0xFFFF
        chain, i = [], head
        while True:
            addr, length, flags, nxt = self.descriptor(i)
            chain.append((addr, length, flags))
            if not flags & DescFlag.NEXT:
                return head, chain
            i = nxt

    def push_used(self, head: int, length: int, publish: bool = True) -> None:
        """Writes a used entry (any values: tests use this to lie)."""
        slot = self.used_idx % self.size
        mem(self.used + 4 + 8 * slot, 8)[:] = struct.pack("<II", head, length)
        self.used_idx = (self.used_idx + 1) & 0xFFFF
        if publish:
            self.publish()

    def publish(self, idx: int | None = None) -> None:
        """Stores used idx (``idx`` to set an arbitrary one)."""
        mem(self.used + 2, 2)[:] = struct.pack("<H", self.used_idx if idx is None else idx)

    def set_used_flags(self, flags: int) -> None:
        """Writes used->flags (NO_NOTIFY)."""
        mem(self.used, 2)[:] = struct.pack("<H", flags)

    def set_avail_event(self, value: int) -> None:
        """Writes avail_event (after the used ring's entries)."""
        mem(self.used + 4 + 8 * self.size, 2)[:] = struct.pack("<H", value & 0xFFFF)


class ModelDevice(Transport):
    """A virtio-net device in this process: transport registers plus rings."""

    name = "model"

    def __init__(self, features: int = DEFAULT_FEATURES, max_size: int = 256,
                 mac: bytes = b"\x52\x54\x00\x12\x34\x56", legacy: bool = False,
                 refuse_features_ok: bool = False, max_pairs: int = 1,
                 answer=None) -> None:
        self.offered, self.max_size, self.mac = features, max_size, mac
        self.legacy, self.refuse_features_ok = legacy, refuse_features_ok
        # max_pairs > 1: queue pairs and a control queue, index 2 * max_pairs,
        # whose commands go to answer(command bytes) -> (ack, used len, head
        # offset) or None (no answer); ``commands`` keeps what arrived.
        self.max_pairs, self.answer, self.commands = max_pairs, answer, []
        self.ring_align = 4096
        self.status = self.driver_features = 0
        self.queues = self._new_queues()
        self.notified = [0] * len(self.queues)
        self.link_status = 1
        self.closed = False
        self.resets = 0

    # -- transport registers ------------------------------------------------

    def reset(self) -> None:
        self.status = 0
        self.resets += 1
        self.queues = self._new_queues()

    def _new_queues(self) -> list[ModelQueue]:
        n = 2 * self.max_pairs + (self.max_pairs > 1)
        return [ModelQueue(self.max_size) for _ in range(n)]

    def get_status(self) -> int:
        return self.status

    def set_status(self, status: int) -> None:
        if status & DeviceStatus.FEATURES_OK and self.refuse_features_ok:
            status &= ~DeviceStatus.FEATURES_OK
        self.status = status

    def get_features(self) -> int:
        return self.offered

    def set_features(self, features: int) -> None:
        assert features & ~self.offered == 0, "driver accepted features never offered"
        self.driver_features = features

    def max_queue_size(self, queue: int) -> int:
        return self.max_size if queue < len(self.queues) else 0

    def set_queue_size(self, queue: int, size: int) -> None:
        self.queues[queue].size = size

    def ring_layout(self, size: int, event_idx: bool):
        return legacy_layout(size) if self.legacy else modern_layout(size)

    def set_queue_addresses(self, queue: int, desc: int, avail: int, used: int) -> None:
        q = self.queues[queue]
        q.desc, q.avail, q.used = desc, avail, used

    def enable_queue(self, queue: int) -> None:
        self.queues[queue].enabled = True

    def notify(self, queue: int) -> None:
        self.notified[queue] += 1
        if self.max_pairs > 1 and queue == 2 * self.max_pairs:
            self._control()

    def _control(self) -> None:
        ctrl = self.queues[-1]
        while ctrl.pending():
            head, chain = ctrl.pop()
            command = b"".join(mem(a, n)[:] for a, n, f in chain if not f & DescFlag.WRITE)
            self.commands.append(command)
            answer = self.answer(command) if self.answer else (0, 1, 0)
            if answer is None:
                continue
            ack, used_len, head_offset = answer
            addr = next(a for a, n, f in chain if f & DescFlag.WRITE)
            mem(addr, 1)[:] = bytes((ack,))
            ctrl.push_used(head + head_offset, used_len)

    def read_config(self, offset: int, length: int) -> bytes:
        space = self.mac + struct.pack("<HHH", self.link_status, self.max_pairs, 0)
        return space[offset:offset + length]

    def close(self) -> None:
        self.closed = True

    # -- device side of the rings -------------------------------------------

    @property
    def rxq(self) -> ModelQueue:
        """Receive queue (the driver's buffers for us to fill)."""
        return self.queues[0]

    @property
    def txq(self) -> ModelQueue:
        """Transmit queue (packets the driver sends)."""
        return self.queues[1]

    @property
    def hdr_size(self) -> int:
        """Header size for the negotiated features."""
        mrg = feature_mask(Feature.NET_MRG_RXBUF, Feature.VERSION_1)
        return 12 if self.driver_features & mrg else 10

    def take_transmitted(self, limit: int = 1 << 30) -> list[tuple[bytes, bytes]]:
        """Consumes sent chains: [(header, frame)], and marks them used."""
        out = []
        while self.txq.pending() and len(out) < limit:
            head, chain = self.txq.pop()
            data = b"".join(mem(a, n)[:] for a, n, _ in chain)
            out.append((data[:self.hdr_size], data[self.hdr_size:]))
            self.txq.push_used(head, 0)
        return out

    def deliver(self, frame: bytes, header: bytes | None = None) -> int:
        """Writes ``frame`` into as many receive buffers as it needs (one
        with mergeable buffers off); returns the number of buffers used."""
        hdr = self.hdr_size
        data = (header or bytes(hdr))[:hdr] + frame
        entries, offset = [], 0
        while offset < len(data):
            assert self.rxq.pending(), "no receive buffers left"
            head, chain = self.rxq.pop()
            written = 0
            for addr, n, flags in chain:
                assert flags & DescFlag.WRITE, "receive buffer not device-writable"
                piece = data[offset:offset + n]
                mem(addr, len(piece))[:] = piece
                offset += len(piece)
                written += len(piece)
            entries.append((head, written))
        if hdr == 12 and self.driver_features & feature_mask(Feature.NET_MRG_RXBUF):
            first_addr = self._first_addr(entries[0][0])
            mem(first_addr + 10, 2)[:] = struct.pack("<H", len(entries))
        for head, written in entries:
            self.rxq.push_used(head, written, publish=False)
        self.rxq.publish()
        return len(entries)

    def _first_addr(self, head: int) -> int:
        return self.rxq.descriptor(head)[0]


def open_driver(size: int = 16, model: dict | None = None,
                **options) -> tuple[ModelDevice, VirtioNetDevice]:
    """A device model of ``size`` entries a queue (``model``: its other
    options) and vguest's driver opened on it (``options``: the driver's)."""
    device = ModelDevice(max_size=size, **(model or {}))
    driver = VirtioNetDevice(device, queue_size=size, **options)
    driver.open()
    return device, driver
