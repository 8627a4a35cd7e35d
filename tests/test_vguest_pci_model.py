"""The legacy PCI transport against a register model of a legacy virtio-net
device (the I/O BAR of virtio 0.9.5), driven through the whole virtio-net
initialisation by the unchanged ``VirtioNetDevice``; then devices that
report nonsense. The model classes are reused by test_vguest_pci_modern.py.
"""

from __future__ import annotations

import re

import pytest

from snabbpy.apps.vguest.device import VirtioNetDevice
from snabbpy.apps.vguest.pci_legacy import LegacyTransport
from snabbpy.apps.vguest.transport import TransportError
from snabbpy.core.memory import DMAMemory, MemfdBackend
from snabbpy.lib.virtio import DeviceStatus, Feature, feature_mask

MAC = bytes.fromhex("525400123456")
NET_FEATURES = feature_mask(Feature.NET_MAC, Feature.NET_STATUS, Feature.NET_MRG_RXBUF,
                            Feature.ANY_LAYOUT)


class Registers:
    """Byte-addressed little-endian registers with per-offset hooks, like
    an I/O BAR: a read or write of width 1, 2 or 4 inside ``size`` bytes."""

    size = 32

    def __init__(self) -> None:
        self.log: list[tuple[str, int, int]] = []

    def _check(self, offset: int, width: int) -> None:
        assert width in (1, 2, 4, 8) and 0 <= offset and offset + width <= self.size, \
            (offset, width)

    def read(self, offset: int, width: int) -> int:
        """Reads a register (the model's ``get``)."""
        self._check(offset, width)
        return self.get(offset, width) & ((1 << 8 * width) - 1)

    def write(self, offset: int, width: int, value: int) -> None:
        """Writes a register (the model's ``put``), and logs it."""
        self._check(offset, width)
        self.log.append(("w", offset, value))
        self.put(offset, width, value)


class LegacyNetModel(Registers):
    """The legacy virtio-net header and config, as QEMU implements them."""

    size = 32  # 20 header + 6 mac + 2 status + 2 pairs + 2 mtu

    def __init__(self, features: int = NET_FEATURES, queue_sizes=(256, 256)) -> None:
        super().__init__()
        self.host_features, self.queue_sizes = features, list(queue_sizes)
        self.guest_features = self.status = self.select = 0
        self.pfn = [0] * len(queue_sizes)
        self.notified: list[int] = []
        self.config = MAC + b"\x01\x00" + b"\x01\x00" + b"\xdc\x05"
        self.sticky_status = True

    def get(self, offset: int, width: int) -> int:
        if offset >= 20:
            return int.from_bytes(self.config[offset - 20:offset - 20 + width], "little")
        q = self.select if self.select < len(self.queue_sizes) else None
        return {0: self.host_features, 4: self.guest_features,
                8: self.pfn[q] if q is not None else 0,
                12: self.queue_sizes[q] if q is not None else 0,
                14: self.select, 18: self.status, 19: 0}.get(offset, 0)

    def put(self, offset: int, width: int, value: int) -> None:
        if offset == 4:
            self.guest_features = value
        elif offset == 8 and self.select < len(self.pfn):
            self.pfn[self.select] = value
        elif offset == 14:
            self.select = value
        elif offset == 16:
            self.notified.append(value)
        elif offset == 18:
            self.status = value if self.sticky_status or value == 0 else 0
            if value == 0:
                self.pfn = [0] * len(self.pfn)
                self.guest_features = 0


class GuestPhysicalBackend(MemfdBackend):
    """Memfd chunks that a device sees at low addresses, like guest RAM
    (a legacy queue PFN is 32 bits: rings must sit below 16 TiB)."""

    chunk_size = 64 << 20
    next_physical = 1 << 30

    def new_chunk(self, size: int):
        chunk = super().new_chunk(size)
        chunk.dma_address = GuestPhysicalBackend.next_physical
        GuestPhysicalBackend.next_physical += chunk.size
        return chunk


#: Ring memory for the model devices, translated to "guest-physical" addresses.
RING_MEMORY = DMAMemory(GuestPhysicalBackend())


def legacy_device(model: LegacyNetModel, **kw) -> VirtioNetDevice:
    return VirtioNetDevice(LegacyTransport(model, config_size=12), memory=RING_MEMORY, **kw)


def test_legacy_init_reaches_driver_ok_with_the_devices_queue_sizes() -> None:
    model = LegacyNetModel(queue_sizes=(1024, 256))
    dev = legacy_device(model, queue_size=64)  # legacy ignores what we would like
    dev.open()
    assert model.status == (DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER
                            | DeviceStatus.DRIVER_OK)
    assert (dev.rx.size, dev.tx.size) == (1024, 256)
    assert model.guest_features == NET_FEATURES  # VERSION_1 is beyond legacy's 32 bits
    assert model.pfn[0] * 4096 == dev.rx.device_addresses()[0]
    assert model.pfn[1] * 4096 == dev.tx.device_addresses()[0]
    assert model.notified == [0]  # fresh receive buffers were announced
    assert dev.mac == MAC and dev.link_up
    dev.close()
    assert model.status == 0 and model.pfn == [0, 0]


def test_legacy_ring_area_stays_inside_one_hugepage() -> None:
    model = LegacyNetModel(queue_sizes=(1024, 1024))
    dev = legacy_device(model)
    dev.open()
    for vq in (dev.rx, dev.tx):
        start = vq.area
        assert start // (2 << 20) == (start + vq.layout.total - 1) // (2 << 20)
        desc, avail, used = vq.device_addresses()
        assert used - desc == 5 * 4096  # legacy layout: used ring on the next page
    dev.close()


def test_legacy_config_moves_to_24_when_msix_is_enabled() -> None:
    model = LegacyNetModel()
    model.config = b"\xff\xff\xff\xff" + MAC + b"\x01\x00"
    t = LegacyTransport(model, msix_enabled=True, config_size=8)
    assert t.read_config(0, 6) == MAC


@pytest.mark.parametrize("size, message", [
    (0, "queue 0 size register (offset 12) reads 0"),
    (100, "reads 100: a split virtqueue size must be a power of two"),
    (65536 - 1, "reads 65535: a virtqueue size must be up to 32768"),
])
def test_legacy_bad_queue_size_names_the_register(size: int, message: str) -> None:
    model = LegacyNetModel(queue_sizes=(size, 256))
    with pytest.raises(TransportError, match=re.escape(message)):
        legacy_device(model).open()
    assert model.status & DeviceStatus.FAILED


def test_legacy_queue_size_cannot_be_changed() -> None:
    t = LegacyTransport(LegacyNetModel())
    assert t.max_queue_size(0) == 256
    with pytest.raises(TransportError, match="fixed"):
        t.set_queue_size(0, 512)


def test_legacy_has_no_feature_bits_above_31() -> None:
    with pytest.raises(TransportError, match="above 31"):
        LegacyTransport(LegacyNetModel()).set_features(1 << Feature.VERSION_1)


def test_legacy_rings_must_be_contiguous_and_page_aligned() -> None:
    t = LegacyTransport(LegacyNetModel())
    size = t.max_queue_size(0)
    layout = t.ring_layout(size, False)
    with pytest.raises(TransportError, match="not page-aligned"):
        t.set_queue_addresses(0, 0x1000 + 64, 0, 0)
    with pytest.raises(TransportError, match="not contiguous"):
        t.set_queue_addresses(0, 0x10000, 0x10000 + layout.avail_offset, 0x90000)


def test_legacy_status_that_does_not_reset_is_an_error() -> None:
    model = LegacyNetModel()
    model.put = lambda offset, width, value: None  # a device that ignores writes
    model.status = DeviceStatus.DRIVER_OK
    with pytest.raises(TransportError, match=r"device status \(offset 18\) is not 0"):
        LegacyTransport(model).reset()


def test_legacy_device_config_reads_are_bounded() -> None:
    with pytest.raises(TransportError, match="outside its 12 bytes"):
        LegacyTransport(LegacyNetModel(), config_size=12).read_config(10, 4)


def test_device_close_releases_the_pci_function() -> None:
    closed = []
    t = LegacyTransport(LegacyNetModel(), on_close=lambda: closed.append(True))
    dev = VirtioNetDevice(t, memory=RING_MEMORY)
    dev.open()
    dev.close()
    assert closed == [True]


def test_a_device_offering_nothing_still_works_without_mac() -> None:
    model = LegacyNetModel(features=0)
    dev = legacy_device(model)
    dev.open()
    assert dev.features == 0 and dev.mac is None and dev.link_up
    dev.close()
