"""What the two virtio PCI transports share: register access, checks of
what the device reports, and ring placement in hugepage memory.

Device registers are untrusted input: a queue size of 0, above 32768 or
(split rings) not a power of two, a capability pointing outside its BAR, a
status bit that does not stick — each becomes a ``TransportError`` naming
the register. No sysfs here: a transport is handed objects with
``read(offset, width)`` and ``write(offset, width, value)``
(``snabbpy.lib.pci`` BARs, or a test's fake device), so the protocol
logic runs without a VM.
"""

from __future__ import annotations

from typing import Protocol

from snabbpy.apps.vguest.transport import Transport, TransportError
from snabbpy.lib.virtio.ring import MAX_QUEUE_SIZE, RingLayout

PAGE = 4096
#: Hugepages are physically contiguous; their neighbours need not be.
HUGEPAGE = 2 << 20


class Registers(Protocol):
    """Little-endian register access of 1, 2, 4 (and for memory, 8) bytes."""

    def read(self, offset: int, width: int) -> int:
        """The value of ``width`` bytes at ``offset``."""

    def write(self, offset: int, width: int, value: int) -> None:
        """Stores ``value`` in ``width`` bytes at ``offset``."""


class Window:
    """A part of a BAR (``offset``, ``length``) that holds one register
    block, so every access is checked against that block's bounds."""

    def __init__(self, bar: Registers, offset: int, length: int, what: str) -> None:
        self.bar, self.offset, self.length, self.what = bar, offset, length, what

    def _at(self, offset: int, width: int) -> int:
        if offset < 0 or offset + width > self.length:
            raise TransportError(f"{self.what}: access at {offset:#x}+{width} is outside "
                                 f"its {self.length:#x} bytes")
        return self.offset + offset

    def read(self, offset: int, width: int) -> int:
        """Reads a register of the block (offset relative to the block)."""
        return self.bar.read(self._at(offset, width), width)

    def write(self, offset: int, width: int, value: int) -> None:
        """Writes a register of the block (offset relative to the block)."""
        self.bar.write(self._at(offset, width), width, value)


def check_device_queue_size(size: int, register: str, packed: bool = False) -> int:
    """``size`` as read from ``register``, if the ring can have it: a split
    ring's is a power of two up to 32768, a packed ring's (``packed``: the
    feature negotiated) any size up to 32768. 0 means the queue does not
    exist: vguest needs both of its queues."""
    if size == 0:
        raise TransportError(f"{register} reads 0: the device has no such queue")
    if size > MAX_QUEUE_SIZE:
        raise TransportError(f"{register} reads {size}: a virtqueue size must be "
                             f"up to {MAX_QUEUE_SIZE}")
    if not packed and size & (size - 1):
        raise TransportError(f"{register} reads {size}: a split virtqueue size must be a "
                             f"power of two up to {MAX_QUEUE_SIZE}")
    return size


def area_align(total: int) -> int:
    """Alignment for a queue's ring area of ``total`` bytes so that it never
    straddles a hugepage: a power of two at least as large as the area (and
    a page)."""
    align = PAGE
    while align < total:
        align <<= 1
    if align > HUGEPAGE:
        raise TransportError(f"ring area of {total} bytes is larger than a hugepage")
    return align


class PCITransport(Transport):
    """Common behaviour of the legacy and modern PCI transports."""

    def __init__(self, name: str, on_close=None) -> None:
        self.name = name
        self.ring_align = PAGE
        self._on_close = on_close
        self.layouts: dict[int, RingLayout] = {}
        self.packed = False  # RING_PACKED negotiated (set_features): any queue size

    def place_rings(self, layout: RingLayout) -> RingLayout:
        """Remembers ``layout`` and aligns the next ring area to keep it in
        one physically contiguous page (``ring_align`` is read by the
        device right after ``ring_layout``)."""
        self.ring_align = area_align(layout.total)
        self.layouts[layout.queue_size] = layout
        return layout

    def area_align(self, total: int) -> int:
        """A packed ring's one area of ``total`` bytes is given to the
        device by physical address: kept inside one hugepage, like a split
        ring's (neighbouring hugepages need not be physically adjacent)."""
        return area_align(total)

    def close(self) -> None:
        """Releases the PCI device (BARs unmapped, driver rebound if asked)."""
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()
