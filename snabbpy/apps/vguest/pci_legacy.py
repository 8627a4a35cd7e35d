"""The legacy virtio PCI transport (virtio 0.9.5): registers in I/O BAR 0.

Layout of the legacy header (little-endian, offsets in the BAR)::

     0  host (device) features   u32  read-only
     4  guest (driver) features  u32
     8  queue PFN                u32  ring area address / 4096
    12  queue size               u16  read-only: the device decides
    14  queue select             u16
    16  queue notify             u16
    18  device status            u8
    19  ISR status               u8   read clears
    20  device config ...             (24 when MSI-X is enabled: two u16
                                       vectors come first)

A legacy queue is one area: descriptors, the avail ring, then the used ring
on the next 4096 boundary, given to the device as a page frame number.
Features are the low 32 bits only, so VERSION_1 is never negotiated and
there is no FEATURES_OK handshake (the device object knows that).
"""

from __future__ import annotations

from snabbpy.apps.vguest.pci_common import PAGE, PCITransport, Registers, check_device_queue_size
from snabbpy.apps.vguest.transport import TransportError
from snabbpy.lib.virtio.ring import RingLayout, legacy_layout

HOST_FEATURES = 0
GUEST_FEATURES = 4
QUEUE_PFN = 8
QUEUE_SIZE = 12
QUEUE_SELECT = 14
QUEUE_NOTIFY = 16
STATUS = 18
ISR = 19
CONFIG = 20
CONFIG_MSIX = 24
#: A PFN is 32 bits of 4096-byte pages: rings must sit below 16 TiB.
MAX_PFN = (1 << 32) - 1


class LegacyTransport(PCITransport):
    """A virtio device through the legacy I/O BAR ``bar``.

    ``msix_enabled`` moves the device config from offset 20 to 24;
    ``config_size`` bounds device config reads (the BAR size minus the
    header); ``on_close`` releases the PCI device."""

    fixed_queue_size = True
    feature_bits = 32

    def __init__(self, bar: Registers, *, name: str = "pci legacy", msix_enabled: bool = False,
                 config_size: int = 12, on_close=None) -> None:
        super().__init__(name, on_close)
        self.bar = bar
        self.config_offset = CONFIG_MSIX if msix_enabled else CONFIG
        self.config_size = config_size
        self.sizes: dict[int, int] = {}

    def reset(self) -> None:
        """Writing 0 to the status register resets a legacy device."""
        self.bar.write(STATUS, 1, 0)
        if self.bar.read(STATUS, 1) != 0:
            raise TransportError(f"{self.name}: device status (offset {STATUS}) is not 0 "
                                 "after reset")

    def get_status(self) -> int:
        """The device status register."""
        return self.bar.read(STATUS, 1)

    def set_status(self, status: int) -> None:
        """Writes the device status register."""
        self.bar.write(STATUS, 1, status)

    def get_features(self) -> int:
        """The 32 host feature bits."""
        return self.bar.read(HOST_FEATURES, 4)

    def set_features(self, features: int) -> None:
        """Writes the guest features (only 32 bits exist in legacy)."""
        if features >> 32:
            raise TransportError(f"{self.name}: legacy devices have no feature bits above 31 "
                                 f"(asked {features:#x})")
        self.bar.write(GUEST_FEATURES, 4, features)

    def max_queue_size(self, queue: int) -> int:
        """The size the device gives ``queue`` (0: no such queue)."""
        self.bar.write(QUEUE_SELECT, 2, queue)
        size = check_device_queue_size(self.bar.read(QUEUE_SIZE, 2),
                                       f"{self.name}: queue {queue} size register (offset 12)")
        if size and self.bar.read(QUEUE_PFN, 4):
            raise TransportError(f"{self.name}: queue {queue} is already active after reset "
                                 f"(queue PFN register, offset {QUEUE_PFN})")
        self.sizes[queue] = size
        return size

    def set_queue_size(self, queue: int, size: int) -> None:
        """Legacy queue sizes cannot change: only the device's own is accepted."""
        if size != self.sizes.get(queue):
            raise TransportError(f"{self.name}: a legacy device's queue size is fixed "
                                 f"({self.sizes.get(queue)}), cannot set {size}")

    def ring_layout(self, size: int, event_idx: bool) -> RingLayout:
        """The one-area legacy layout: used ring on the next 4096 boundary."""
        return self.place_rings(legacy_layout(size))

    def set_queue_addresses(self, queue: int, desc: int, avail: int, used: int) -> None:
        """Gives the device the ring area's page frame number; the avail and
        used rings must be where the legacy layout says, since the device
        derives them from the PFN alone."""
        layout = self.layouts.get(self.sizes.get(queue, 0))
        if layout is None:
            raise TransportError(f"{self.name}: queue {queue} set up out of order")
        if desc % PAGE or desc // PAGE > MAX_PFN:
            raise TransportError(f"{self.name}: queue {queue} ring at {desc:#x} is not "
                                 "page-aligned below 16 TiB")
        if (avail, used) != (desc + layout.avail_offset, desc + layout.used_offset):
            raise TransportError(f"{self.name}: queue {queue} rings are not contiguous in the "
                                 "legacy layout (ring area crosses physical pages?)")
        self.bar.write(QUEUE_SELECT, 2, queue)
        self.bar.write(QUEUE_PFN, 4, desc // PAGE)
        if self.bar.read(QUEUE_PFN, 4) != desc // PAGE:
            raise TransportError(f"{self.name}: queue {queue} PFN (offset {QUEUE_PFN}) did "
                                 "not keep the value written")

    def enable_queue(self, queue: int) -> None:
        """Nothing to do: a legacy queue is live once its PFN is set."""

    def notify(self, queue: int) -> None:
        """Writes the queue index to the notify register."""
        self.bar.write(QUEUE_NOTIFY, 2, queue)

    def read_isr(self) -> int:
        """Reads (and so clears) the ISR status; vguest polls, this is for tools."""
        return self.bar.read(ISR, 1)

    def read_config(self, offset: int, length: int) -> bytes:
        """Device config bytes, one byte access at a time (legacy config has
        no generation counter, so it is read twice until stable)."""
        if offset < 0 or offset + length > self.config_size:
            raise TransportError(f"{self.name}: device config {offset}+{length} is outside "
                                 f"its {self.config_size} bytes")
        base = self.config_offset + offset
        for _ in range(10):
            first = bytes(self.bar.read(base + i, 1) for i in range(length))
            if first == bytes(self.bar.read(base + i, 1) for i in range(length)):
                return first
        raise TransportError(f"{self.name}: device config at {offset} keeps changing")
