"""The modern virtio PCI transport (virtio 1.x section 4.1): register
blocks found through vendor capabilities, in memory BARs.

The common configuration block (offsets within it)::

     0 device_feature_select u32    4 device_feature  u32
     8 driver_feature_select u32   12 driver_feature  u32
    16 msix_config u16             18 num_queues u16
    20 device_status u8            21 config_generation u8
    22 queue_select u16            24 queue_size u16 (max; writable, smaller)
    26 queue_msix_vector u16       28 queue_enable u16
    30 queue_notify_off u16
    32 queue_desc u64   40 queue_driver u64   48 queue_device u64

A queue is notified by writing its index at ``notify block +
queue_notify_off * notify_off_multiplier``. Device config reads are
repeated until ``config_generation`` is the same before and after.
64-bit registers are written as two 32-bit halves, low first, which every
device must accept.
"""

from __future__ import annotations

from snabbpy.apps.vguest.pci_common import PCITransport, Window, check_device_queue_size
from snabbpy.apps.vguest.transport import TransportError
from snabbpy.lib.virtio import Feature
from snabbpy.lib.virtio.ring import RingLayout, modern_layout

DEVICE_FEATURE_SELECT = 0
DEVICE_FEATURE = 4
DRIVER_FEATURE_SELECT = 8
DRIVER_FEATURE = 12
MSIX_CONFIG = 16
NUM_QUEUES = 18
DEVICE_STATUS = 20
CONFIG_GENERATION = 21
QUEUE_SELECT = 22
QUEUE_SIZE = 24
QUEUE_MSIX_VECTOR = 26
QUEUE_ENABLE = 28
QUEUE_NOTIFY_OFF = 30
QUEUE_DESC = 32
QUEUE_DRIVER = 40
QUEUE_DEVICE = 48
COMMON_SIZE = 56
NO_VECTOR = 0xFFFF
#: Reset and config reads poll the device; these bound the polling.
RESET_POLLS = 100_000
GENERATION_TRIES = 100


class ModernTransport(PCITransport):
    """A virtio 1.x device through its ``common``, ``notify``, ``isr`` and
    ``device`` register blocks (``Window`` objects, bounds checked)."""

    def __init__(self, common: Window, notify: Window, notify_off_multiplier: int,
                 isr: Window, device: Window, *, name: str = "pci modern",
                 on_close=None) -> None:
        super().__init__(name, on_close)
        if common.length < COMMON_SIZE:
            raise TransportError(f"{name}: common config capability is {common.length} bytes, "
                                 f"less than the {COMMON_SIZE} of virtio 1.0")
        self.common, self.notify_block, self.isr, self.device = common, notify, isr, device
        self.multiplier = notify_off_multiplier
        self.notify_at: dict[int, int] = {}

    def _select(self, queue: int) -> None:
        num = self.common.read(NUM_QUEUES, 2)
        if queue >= num:
            raise TransportError(f"{self.name}: num_queues is {num}: the device has no "
                                 f"queue {queue}")
        self.common.write(QUEUE_SELECT, 2, queue)

    def _write64(self, offset: int, value: int) -> None:
        self.common.write(offset, 4, value & 0xFFFFFFFF)
        self.common.write(offset + 4, 4, value >> 32)

    def _read64(self, offset: int) -> int:
        return self.common.read(offset, 4) | self.common.read(offset + 4, 4) << 32

    def reset(self) -> None:
        """Writes status 0 and waits until the device reads back 0 (its
        reset is complete only then)."""
        self.common.write(DEVICE_STATUS, 1, 0)
        for _ in range(RESET_POLLS):
            if self.common.read(DEVICE_STATUS, 1) == 0:
                self.notify_at.clear()
                return
        raise TransportError(f"{self.name}: device_status never reads 0 after reset")

    def get_status(self) -> int:
        """device_status."""
        return self.common.read(DEVICE_STATUS, 1)

    def set_status(self, status: int) -> None:
        """Writes device_status."""
        self.common.write(DEVICE_STATUS, 1, status)

    def get_features(self) -> int:
        """device_feature, both 32-bit halves; VERSION_1 must be among them."""
        features = 0
        for half in (0, 1):
            self.common.write(DEVICE_FEATURE_SELECT, 4, half)
            features |= self.common.read(DEVICE_FEATURE, 4) << (32 * half)
        if not features >> Feature.VERSION_1 & 1:
            raise TransportError(f"{self.name}: device_feature {features:#x} lacks VERSION_1, "
                                 "required of a modern device")
        return features

    def set_features(self, features: int) -> None:
        """driver_feature, both halves."""
        for half in (0, 1):
            self.common.write(DRIVER_FEATURE_SELECT, 4, half)
            self.common.write(DRIVER_FEATURE, 4, features >> (32 * half) & 0xFFFFFFFF)
        self.packed = bool(features >> Feature.RING_PACKED & 1)

    def max_queue_size(self, queue: int) -> int:
        """queue_size of ``queue`` after reset: its largest size."""
        self._select(queue)
        size = self.common.read(QUEUE_SIZE, 2)
        check_device_queue_size(size, f"{self.name}: queue {queue} queue_size", self.packed)
        if self.common.read(QUEUE_ENABLE, 2):
            raise TransportError(f"{self.name}: queue {queue} queue_enable is set after reset")
        return size

    def set_queue_size(self, queue: int, size: int) -> None:
        """Writes queue_size and checks that the device kept it."""
        self._select(queue)
        self.common.write(QUEUE_SIZE, 2, size)
        kept = self.common.read(QUEUE_SIZE, 2)
        if kept != size:
            raise TransportError(f"{self.name}: queue {queue} queue_size reads {kept} after "
                                 f"writing {size}")

    def ring_layout(self, size: int, event_idx: bool) -> RingLayout:
        """The compact layout, kept inside one hugepage."""
        return self.place_rings(modern_layout(size, event_idx=True))

    def set_queue_addresses(self, queue: int, desc: int, avail: int, used: int) -> None:
        """queue_desc/driver/device; no MSI-X vector (vguest polls); finds
        where this queue's notifications go."""
        self._select(queue)
        for offset, value in ((QUEUE_DESC, desc), (QUEUE_DRIVER, avail), (QUEUE_DEVICE, used)):
            self._write64(offset, value)
            if self._read64(offset) != value:
                raise TransportError(f"{self.name}: queue {queue} register at {offset} of the "
                                     f"common config did not keep {value:#x}")
        self.common.write(QUEUE_MSIX_VECTOR, 2, NO_VECTOR)
        off = self.common.read(QUEUE_NOTIFY_OFF, 2)
        at = off * self.multiplier
        if at + 2 > self.notify_block.length:
            raise TransportError(
                f"{self.name}: queue {queue} queue_notify_off {off} x notify_off_multiplier "
                f"{self.multiplier} is outside the {self.notify_block.length}-byte notify area")
        self.notify_at[queue] = at

    def enable_queue(self, queue: int) -> None:
        """queue_enable = 1, read back."""
        self._select(queue)
        self.common.write(QUEUE_ENABLE, 2, 1)
        if self.common.read(QUEUE_ENABLE, 2) != 1:
            raise TransportError(f"{self.name}: queue {queue} queue_enable did not stick")

    def notify(self, queue: int) -> None:
        """Writes the queue index at the queue's notify address."""
        self.notify_block.write(self.notify_at[queue], 2, queue)

    def read_isr(self) -> int:
        """Reads (and so clears) the ISR status; vguest polls, this is for tools."""
        return self.isr.read(0, 1)

    def read_config(self, offset: int, length: int) -> bytes:
        """Device config bytes, consistent: re-read while config_generation
        changes under us."""
        for _ in range(GENERATION_TRIES):
            before = self.common.read(CONFIG_GENERATION, 1)
            data = bytes(self.device.read(offset + i, 1) for i in range(length))
            if self.common.read(CONFIG_GENERATION, 1) == before:
                return data
        raise TransportError(f"{self.name}: config_generation keeps changing: device config "
                             "cannot be read consistently")
