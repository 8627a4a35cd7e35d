"""The modern PCI transport against a register model of a virtio 1.x
virtio-net device (common config, notify, ISR and device config blocks in
one memory BAR, laid out as QEMU does), driven through the whole
initialisation by ``VirtioNetDevice``; then devices that report nonsense,
and capabilities that point where they must not."""

from __future__ import annotations

import re

import pytest
from test_vguest_pci_model import MAC, NET_FEATURES, RING_MEMORY, Registers

from snabbpy.apps.vguest import pci_modern as m
from snabbpy.apps.vguest import pci_transport
from snabbpy.apps.vguest.device import DeviceError, VirtioNetDevice
from snabbpy.apps.vguest.pci_common import Window
from snabbpy.apps.vguest.pci_modern import ModernTransport
from snabbpy.apps.vguest.transport import TransportError
from snabbpy.lib import pci
from snabbpy.lib.virtio import DeviceStatus, Feature

MODERN_FEATURES = NET_FEATURES | 1 << Feature.VERSION_1
COMMON, ISR, DEVICE, NOTIFY = 0x0, 0x1000, 0x2000, 0x3000


class ModernNetModel(Registers):
    """A modern virtio-net function's BAR 4 (16 KiB, four 4 KiB blocks)."""

    size = 0x4000

    def __init__(self, features: int = MODERN_FEATURES, max_size: int = 1024,
                 num_queues: int = 3, multiplier: int = 4) -> None:
        super().__init__()
        self.features, self.max_size, self.num_queues = features, max_size, num_queues
        self.multiplier = multiplier
        self.reg: dict[int, int] = {}
        self.queues = [{"size": max_size, "enable": 0, 32: 0, 40: 0, 48: 0}
                       for _ in range(num_queues)]
        self.driver_features = self.status = self.generation = 0
        self.refuse_features = False
        self.notified: list[int] = []
        self.config = MAC + b"\x01\x00"

    def q(self) -> dict:
        return self.queues[self.reg.get(m.QUEUE_SELECT, 0)]

    def get(self, offset: int, width: int) -> int:
        if offset >= DEVICE:
            return int.from_bytes(self.config[offset - DEVICE:][:width], "little")
        if offset == ISR:
            return 0
        return self._common(offset)

    def _common(self, off: int) -> int:
        if off == m.DEVICE_FEATURE:
            return self.features >> 32 * self.reg.get(m.DEVICE_FEATURE_SELECT, 0) & 0xFFFFFFFF
        if off in (m.QUEUE_DESC, m.QUEUE_DESC + 4, m.QUEUE_DRIVER, m.QUEUE_DRIVER + 4,
                   m.QUEUE_DEVICE, m.QUEUE_DEVICE + 4):
            return self.q()[off & ~7] >> (32 if off & 4 else 0) & 0xFFFFFFFF
        return {m.NUM_QUEUES: self.num_queues, m.DEVICE_STATUS: self.status,
                m.CONFIG_GENERATION: self.generation, m.QUEUE_SIZE: self.q()["size"],
                m.QUEUE_ENABLE: self.q()["enable"],
                m.QUEUE_NOTIFY_OFF: self.reg.get(m.QUEUE_SELECT, 0)}.get(off, 0)

    def put(self, off: int, width: int, value: int) -> None:
        if off >= NOTIFY:
            self.notified.append(value)
        elif off == m.DRIVER_FEATURE:
            half = self.reg.get(m.DRIVER_FEATURE_SELECT, 0)
            self.driver_features |= value << 32 * half
        elif off == m.DEVICE_STATUS:
            self._status(value)
        elif off == m.QUEUE_SIZE:
            self.q()["size"] = value if value <= self.max_size else self.q()["size"]
        elif off == m.QUEUE_ENABLE:
            self.q()["enable"] = value
        elif m.QUEUE_DESC <= off < m.COMMON_SIZE:
            shift = 32 if off & 4 else 0
            q = self.q()
            q[off & ~7] = q[off & ~7] & ~(0xFFFFFFFF << shift) | value << shift
        else:
            self.reg[off] = value

    def _status(self, value: int) -> None:
        if value == 0:
            refuse = self.refuse_features
            self.__init__(self.features, self.max_size, self.num_queues, self.multiplier)
            self.refuse_features = refuse
            return
        if value & DeviceStatus.FEATURES_OK and self.refuse_features:
            value &= ~DeviceStatus.FEATURES_OK
        self.status = value


def modern(model: ModernNetModel, notify_length: int = 0x1000) -> ModernTransport:
    return ModernTransport(Window(model, COMMON, 0x1000, "common"),
                           Window(model, NOTIFY, notify_length, "notify"), model.multiplier,
                           Window(model, ISR, 0x1000, "isr"),
                           Window(model, DEVICE, 0x1000, "device"))


def test_modern_init_negotiates_version_1_and_sets_each_ring_address() -> None:
    model = ModernNetModel()
    dev = VirtioNetDevice(modern(model), queue_size=512, memory=RING_MEMORY)
    dev.open()
    assert model.status == (DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER
                            | DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK)
    assert model.driver_features == MODERN_FEATURES
    for queue, vq in enumerate((dev.rx, dev.tx)):
        q = model.queues[queue]
        assert q["size"] == 512 and q["enable"] == 1
        assert (q[m.QUEUE_DESC], q[m.QUEUE_DRIVER], q[m.QUEUE_DEVICE]) == vq.device_addresses()
    assert model.notified == [0]
    assert dev.mac == MAC and dev.link_up
    dev.close()
    assert model.status == 0


def test_modern_queue_size_is_capped_by_the_device() -> None:
    model = ModernNetModel(max_size=256)
    dev = VirtioNetDevice(modern(model), queue_size=1024, memory=RING_MEMORY)
    dev.open()
    assert (dev.rx.size, dev.tx.size) == (256, 256)
    dev.close()


def test_notifications_go_to_queue_notify_off_times_multiplier() -> None:
    model = ModernNetModel(multiplier=4)
    t = modern(model)
    VirtioNetDevice(t, memory=RING_MEMORY).open()
    t.notify(1)
    assert ("w", NOTIFY + 4, 1) in model.log


@pytest.mark.parametrize("change, message", [
    ({"features": NET_FEATURES}, "device_feature 0x.* lacks VERSION_1"),
    ({"max_size": 0}, "queue 0 queue_size reads 0"),
    ({"max_size": 768}, "queue 0 queue_size reads 768: a split virtqueue size must be a "
                        "power of two"),
    ({"max_size": 65536 - 1}, "up to 32768"),
    ({"num_queues": 1}, "num_queues is 1: the device has no queue 1"),
    ({"multiplier": 0x1000}, "queue 1 queue_notify_off 1 x notify_off_multiplier 4096 is "
                            "outside the 4096-byte notify area"),
])
def test_modern_register_nonsense_is_named(change: dict, message: str) -> None:
    model = ModernNetModel(**change)
    with pytest.raises(TransportError, match=message):
        VirtioNetDevice(modern(model), memory=RING_MEMORY).open()
    assert model.status & DeviceStatus.FAILED


def test_features_ok_that_does_not_stick_fails_the_device() -> None:
    model = ModernNetModel()
    model.refuse_features = True
    with pytest.raises(DeviceError, match=re.escape("(FEATURES_OK not set)")):
        VirtioNetDevice(modern(model), memory=RING_MEMORY).open()


def test_config_is_reread_while_the_generation_changes() -> None:
    model = ModernNetModel()
    reads = iter([1, 2, 2, 2])  # changed during the first read, stable on the second
    model._common = lambda off, orig=model._common: (
        next(reads) if off == m.CONFIG_GENERATION else orig(off))
    assert modern(model).read_config(0, 6) == MAC


def test_config_that_never_settles_is_an_error() -> None:
    model = ModernNetModel()
    counter = iter(range(1, 10_000))
    model._common = lambda off, orig=model._common: (
        next(counter) if off == m.CONFIG_GENERATION else orig(off))
    with pytest.raises(TransportError, match="config_generation keeps changing"):
        modern(model).read_config(0, 6)


def test_a_short_common_capability_is_refused() -> None:
    model = ModernNetModel()
    with pytest.raises(TransportError, match="common config capability is 32 bytes"):
        ModernTransport(Window(model, 0, 32, "common"), Window(model, NOTIFY, 8, "notify"), 4,
                        Window(model, ISR, 1, "isr"), Window(model, DEVICE, 8, "device"))


class FakeFunction:
    """Enough of pci.PCIDevice for checking capabilities: BAR sizes."""

    address = "0000:00:05.0"

    def __init__(self, bar_sizes: dict[int, int]) -> None:
        self.bar_sizes = bar_sizes

    def resource(self, n: int) -> tuple[int, int, int]:
        return (0xFE000000, self.bar_sizes.get(n, 0), pci.RESOURCE_MEM)

    def open_bar(self, n: int) -> ModernNetModel:
        return ModernNetModel()


@pytest.mark.parametrize("cap, message", [
    (pci.VirtioCap(0x70, 2, 4, 0x3000, 0x2000, 4), "notify capability at config 0x70 points "
                                                   "outside BAR 4: offset 0x3000 length 0x2000, "
                                                   "BAR size 0x4000"),
    (pci.VirtioCap(0x40, 1, 2, 0, 0x1000), "common config capability at config 0x40 names "
                                           "BAR 2, which is not implemented"),
    (pci.VirtioCap(0x40, 1, 7, 0, 0x1000), "names BAR 7, which cannot exist"),
    (pci.VirtioCap(0x60, 4, 4, 0x2000, 0), "points outside BAR 4"),
])
def test_a_capability_outside_its_bar_is_refused(cap: pci.VirtioCap, message: str) -> None:
    with pytest.raises(TransportError, match=re.escape(message)):
        pci_transport.cap_window(FakeFunction({4: 0x4000}), cap)


def test_a_capability_inside_its_bar_gives_a_bounded_window() -> None:
    window = pci_transport.cap_window(FakeFunction({4: 0x4000}),
                                      pci.VirtioCap(0x60, 4, 4, 0x2000, 0x1000))
    assert window.read(0, 4) == int.from_bytes(MAC[:4], "little")
    with pytest.raises(TransportError, match="outside its 0x1000 bytes"):
        window.read(0x1000, 1)


def test_pci_mode_must_be_known() -> None:
    with pytest.raises(ValueError, match="auto, legacy, modern"):
        pci_transport.check_mode("virtio")
