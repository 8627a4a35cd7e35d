"""The driver side of a virtio-net control virtqueue: one command at a time.

Commands are rare (setting the queue pairs once at start), so this ring is
plain Python over DMA memory: a command is a chain of two descriptors, the
command bytes (device-readable) then a one-byte ack (device-writable); the
driver kicks the device and polls the used ring for the answer. The
device's answer is not trusted: a used entry naming another chain, or an
ack that is neither OK nor ERR, is a ``ControlQueueError``.
"""

from __future__ import annotations

import struct
import time

from snabbpy.apps.vguest.transport import Transport
from snabbpy.core.memory import DMAMemory, dma
from snabbpy.core.native import ffi
from snabbpy.lib.virtio import DescFlag
from snabbpy.lib.virtio.net_ctrl import ERR, OK

#: Descriptors of the control ring (a command takes two).
SIZE = 16
#: Bytes of the command buffer; the ack byte follows it.
COMMAND_MAX = 64


class ControlQueueError(Exception):
    """The device did not answer a command, or answered nonsense."""


class DriverControlQueue:
    """Control queue ``index`` of the device behind ``transport``, set up
    (size, addresses, enabled) when made."""

    def __init__(self, transport: Transport, index: int, memory: DMAMemory = dma) -> None:
        t = transport
        self.transport, self.index, self.memory = t, index, memory
        limit = t.max_queue_size(index)
        if limit == 0:
            raise ControlQueueError(f"{t.name}: device has no control queue {index}")
        self.size = limit if t.fixed_queue_size else min(SIZE, limit)
        if not t.fixed_queue_size:
            t.set_queue_size(index, self.size)
        self.layout = t.ring_layout(self.size, True)
        self.area = memory.allocate(self.layout.total, t.ring_align)
        self.buf = memory.allocate(COMMAND_MAX + 1, 16)
        ffi.memmove(ffi.cast("uint8_t *", self.area), bytes(self.layout.total), self.layout.total)
        self.avail_idx = 0
        da = memory.dma_address
        t.set_queue_addresses(index, da(self.area + self.layout.desc_offset),
                              da(self.area + self.layout.avail_offset),
                              da(self.area + self.layout.used_offset))
        t.enable_queue(index)

    def _write(self, address: int, data: bytes) -> None:
        ffi.memmove(ffi.cast("uint8_t *", address), data, len(data))

    def _read(self, address: int, n: int) -> bytes:
        return ffi.buffer(ffi.cast("uint8_t *", address), n)[:]

    def command(self, data: bytes, timeout: float = 5.0) -> int:
        """Sends one command (class, command, data bytes) and waits for the
        device's ack: ``OK`` or ``ERR``."""
        if not 2 <= len(data) <= COMMAND_MAX:
            raise ValueError(f"control command of {len(data)} bytes: 2 to {COMMAND_MAX}")
        lay, da = self.layout, self.memory.dma_address
        ack = self.buf + COMMAND_MAX
        self._write(self.buf, data)
        self._write(ack, b"\xff")
        desc = self.area + lay.desc_offset
        self._write(desc, struct.pack("<QIHH", da(self.buf), len(data), DescFlag.NEXT, 1))
        self._write(desc + 16, struct.pack("<QIHH", da(ack), 1, DescFlag.WRITE, 0))
        avail = self.area + lay.avail_offset
        self._write(avail + 4 + 2 * (self.avail_idx % self.size), struct.pack("<H", 0))
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self._write(avail + 2, struct.pack("<H", self.avail_idx))  # x86: stores stay in order
        self.transport.notify(self.index)
        used = self.area + lay.used_offset
        deadline = time.monotonic() + timeout
        while struct.unpack("<H", self._read(used + 2, 2))[0] != self.avail_idx:
            if time.monotonic() > deadline:
                raise ControlQueueError(f"{self.transport.name}: no answer to a control "
                                        f"command in {timeout:g}s")
            time.sleep(0.001)
        slot = used + 4 + 8 * ((self.avail_idx - 1) % self.size)
        head, length = struct.unpack("<II", self._read(slot, 8))
        answer = self._read(ack, 1)[0]
        if head != 0 or length < 1 or answer not in (OK, ERR):
            raise ControlQueueError(f"{self.transport.name}: control queue answer makes no "
                                    f"sense (chain {head}, length {length}, ack {answer})")
        return answer
