"""The driver side of a virtio-net control virtqueue: one command at a time.

Commands are rare (setting the queue pairs once at start), so this ring is
plain Python over DMA memory (``control_rings.py``: split, or packed when
RING_PACKED was negotiated): a command is a chain of two descriptors, the
command bytes (device-readable) then a one-byte ack (device-writable); the
driver kicks the device and polls for the answer. The device's answer is
not trusted: a used entry naming another chain, or an ack that is neither
OK nor ERR, is a ``ControlQueueError``.
"""

from __future__ import annotations

import time

from snabbpy.apps.vguest.control_rings import PackedControlRing, SplitControlRing
from snabbpy.apps.vguest.transport import Transport
from snabbpy.core.memory import DMAMemory, dma
from snabbpy.core.native import ffi
from snabbpy.lib.virtio.net_ctrl import ERR, OK

#: Descriptors of the control ring (a command takes two).
SIZE = 16
#: Bytes of the command buffer; the ack byte follows it.
COMMAND_MAX = 64


class ControlQueueError(Exception):
    """The device did not answer a command, or answered nonsense."""


class DriverControlQueue:
    """Control queue ``index`` of the device behind ``transport``, set up
    (size, addresses, enabled) when made; a packed ring when ``packed``."""

    def __init__(self, transport: Transport, index: int, memory: DMAMemory = dma,
                 packed: bool = False) -> None:
        t = transport
        self.transport, self.index, self.memory = t, index, memory
        limit = t.max_queue_size(index)
        if limit == 0:
            raise ControlQueueError(f"{t.name}: device has no control queue {index}")
        self.size = limit if t.fixed_queue_size else min(SIZE, limit)
        if not t.fixed_queue_size:
            t.set_queue_size(index, self.size)
        self.ring = PackedControlRing(self.size, t.ring_align, memory) if packed else \
            SplitControlRing(t.ring_layout(self.size, True), t.ring_align, memory)
        self.buf = memory.allocate(COMMAND_MAX + 1, 16)
        t.set_queue_addresses(index, *self.ring.addresses())
        t.enable_queue(index)

    def command(self, data: bytes, timeout: float = 5.0) -> int:
        """Sends one command (class, command, data bytes) and waits for the
        device's ack: ``OK`` or ``ERR``."""
        if not 2 <= len(data) <= COMMAND_MAX:
            raise ValueError(f"control command of {len(data)} bytes: 2 to {COMMAND_MAX}")
        buf = ffi.cast("uint8_t *", self.buf)
        ack = self.buf + COMMAND_MAX
        ffi.memmove(buf, data + bytes(COMMAND_MAX - len(data)) + b"\xff", COMMAND_MAX + 1)
        self.ring.post(self.buf, len(data), ack)
        self.transport.notify(self.index)
        deadline = time.monotonic() + timeout
        while (used := self.ring.answer()) is None:
            if time.monotonic() > deadline:
                raise ControlQueueError(f"{self.transport.name}: no answer to a control "
                                        f"command in {timeout:g}s")
            time.sleep(0.001)
        head, length = used
        answer = buf[COMMAND_MAX]
        if head != 0 or length < 1 or answer not in (OK, ERR):
            raise ControlQueueError(f"{self.transport.name}: control queue answer makes no "
                                    f"sense (chain {head}, length {length}, ack {answer})")
        return answer
