"""vguest's packed rings over the PCI transports, in one process: the
register models of test_vguest_pci_model.py / test_vguest_pci_modern.py
stand for QEMU's virtio-net-pci with ``packed=on``.

- modern: a packed ring's area is handed to the device by physical
  address, so it must not straddle a hugepage (the split ring's rule);
- legacy: RING_PACKED is feature bit 34, beyond the 32 feature bits of a
  legacy device, so vguest runs split rings there and says why.
"""

from __future__ import annotations

from test_vguest_pci_model import GuestPhysicalBackend, LegacyNetModel, legacy_device
from test_vguest_pci_modern import MODERN_FEATURES, ModernNetModel, modern

from snabbpy.apps.vguest import pci_modern as m
from snabbpy.apps.vguest.device import VirtioNetDevice
from snabbpy.core.memory import DMAMemory
from snabbpy.lib.virtio import Feature
from snabbpy.lib.virtio.packed_virtq import PackedVirtq, area_size

HUGEPAGE, PAGE = 2 << 20, 4096
PACKED = 1 << Feature.RING_PACKED


def memory_one_page_short_of_a_hugepage() -> DMAMemory:
    """Fresh ring memory whose next page-aligned area starts one page
    before a hugepage boundary (its chunks start on one)."""
    memory = DMAMemory(GuestPhysicalBackend())
    filler = memory.allocate(HUGEPAGE - PAGE, PAGE)
    assert memory.dma_address(filler) % HUGEPAGE == 0
    return memory


def test_a_packed_ring_area_stays_inside_one_hugepage() -> None:
    """A 1024-entry packed ring is 16 KiB and 8 bytes: aligned only to a
    page, it would start one page short of the boundary and run into the
    next hugepage, which need not follow it in physical memory."""
    model = ModernNetModel(features=MODERN_FEATURES | PACKED, max_size=1024)
    dev = VirtioNetDevice(modern(model), queue_size=1024, packed=True,
                          memory=memory_one_page_short_of_a_hugepage())
    dev.open()
    assert dev.has(Feature.RING_PACKED)
    for queue, vq in enumerate((dev.rx, dev.tx)):
        assert isinstance(vq, PackedVirtq)
        ring, driver, device = vq.device_addresses()
        end = ring + area_size(vq.size) - 1
        assert ring // HUGEPAGE == end // HUGEPAGE, f"queue {queue}: {ring:#x}..{end:#x}"
        q = model.queues[queue]
        assert (q[m.QUEUE_DESC], q[m.QUEUE_DRIVER], q[m.QUEUE_DEVICE]) == (ring, driver, device)
    dev.close()


def test_a_modern_device_offering_packed_gets_packed_rings_and_says_so() -> None:
    model = ModernNetModel(features=MODERN_FEATURES | PACKED, max_size=256)
    dev = VirtioNetDevice(modern(model), packed=True, memory=memory_one_page_short_of_a_hugepage())
    dev.open()
    assert model.driver_features & PACKED
    assert dev.rings() == "packed rings"
    dev.close()


def test_a_legacy_device_cannot_negotiate_packed_rings_and_vguest_says_why() -> None:
    """QEMU's packed=on behind the legacy interface: the host features
    register has bits 0..31 only, so there is no RING_PACKED to accept."""
    model = LegacyNetModel()
    dev = legacy_device(model, packed=True)
    dev.open()
    assert not dev.has(Feature.RING_PACKED) and not model.guest_features >> 32
    assert not isinstance(dev.rx, PackedVirtq) and not isinstance(dev.tx, PackedVirtq)
    assert dev.rings() == ("split rings (packed rings asked for, but pci legacy has the 32 "
                           "feature bits of a legacy device, and RING_PACKED is bit 34)")
    dev.close()


def test_a_modern_device_without_packed_gives_split_rings_and_the_reason() -> None:
    dev = VirtioNetDevice(modern(ModernNetModel()), packed=True,
                          memory=memory_one_page_short_of_a_hugepage())
    dev.open()
    assert dev.rings() == "split rings (packed rings asked for, the device does not offer them)"
    dev.close()
    dev = VirtioNetDevice(modern(ModernNetModel(features=MODERN_FEATURES | PACKED)),
                          packed=False, memory=memory_one_page_short_of_a_hugepage())
    dev.open()
    assert dev.rings() == "split rings"
    dev.close()
