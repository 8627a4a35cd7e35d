"""Setting up packed rings of any size, on both ends: VhostUser's
SET_VRING_NUM and ring start (device side), vguest's initialisation
against a modern PCI device offering a maximum that is no power of two
(driver side); split rings keep needing a power of two and say so in one
line, and sizes outside 1..32768 are refused on every ring."""

from __future__ import annotations

import pytest
from guarded_memory import GPA, GuardedMemory
from test_packed_vhost_device import device
from test_vguest_pci_model import RING_MEMORY
from test_vguest_pci_modern import MODERN_FEATURES, ModernNetModel, modern

from snabbpy.apps.vguest.device import DeviceError, VirtioNetDevice
from snabbpy.apps.vguest.transport import TransportError
from snabbpy.apps.vhost import VhostUser
from snabbpy.apps.vhost.device import SUPPORTED_FEATURES, VhostDevice
from snabbpy.apps.vhost.device import DeviceError as VhostDeviceError
from snabbpy.apps.vhost.vring import Vring, VringError
from snabbpy.core import config
from snabbpy.core.native import ffi
from snabbpy.lib.vhost_user import Message, Request, VringState
from snabbpy.lib.vhost_user.payloads import VringAddr
from snabbpy.lib.virtio import DeviceStatus
from snabbpy.lib.virtio.constants import Feature, feature_mask
from snabbpy.lib.virtio.packed_virtq import PackedVirtq

PACKED = feature_mask(Feature.VERSION_1, Feature.RING_PACKED)
SPLIT = feature_mask(Feature.VERSION_1)


def set_num(d: VhostDevice, n: int) -> int:
    d.handle(Message(Request.SET_VRING_NUM, 0, VringState(1, n)))
    return d.tx.num


# -- device side: VhostUser ----------------------------------------------------

@pytest.mark.parametrize("n", [1, 3, 100, 255, 1000, 32767, 32768])
def test_set_vring_num_takes_any_size_on_a_packed_ring(n):
    assert set_num(device(PACKED), n) == n


@pytest.mark.parametrize("features", [PACKED, SPLIT])
@pytest.mark.parametrize("n", [0, 32769, 65536, 2**32 - 1])
def test_set_vring_num_refuses_sizes_outside_1_to_32768(features, n):
    with pytest.raises(VhostDeviceError, match=f"^queue size {n} is not in 1..32768$"):
        set_num(device(features), n)


def test_a_split_ring_still_needs_a_power_of_two():
    d = device(SPLIT)
    assert set_num(d, 512) == 512
    with pytest.raises(VhostDeviceError, match="^queue size 1000 is not a power of two, which "
                                               r"a split ring needs \(RING_PACKED not "):
        set_num(d, 1000)


def test_qsize_caps_packed_and_split_rings(tmp_path):
    app = VhostUser(config.validate("v", VhostUser, {"socket_path": str(tmp_path / "s"),
                                                     "qsize": 1000}))
    assert app.device.max_queue_size == 1000
    app.stop()
    d = VhostDevice(SUPPORTED_FEATURES, (ffi.new("struct dr_stats *"),
                                         ffi.new("struct dr_stats *")), 1000)
    d.handle(Message(Request.SET_FEATURES, 0, PACKED))
    assert set_num(d, 1000) == 1000
    with pytest.raises(VhostDeviceError, match="queue size 1001 is not in 1..1000"):
        set_num(d, 1001)


MEM = GuardedMemory()
RING, DRIVER, DEVICE = GPA[0], GPA[0] + 0x4000, GPA[0] + 0x4004


def vring(num: int) -> Vring:
    v = Vring(1, ffi.new("struct dr_stats *"))
    v.num, v.base = num, 0x80008000
    v.addr = VringAddr(1, 0, RING, DEVICE, DRIVER)
    return v


def test_a_ring_whose_features_turned_split_is_refused_at_start():
    """SET_VRING_NUM 1000 on packed rings, then SET_FEATURES without them
    (a frontend renegotiating): the ring cannot start, and says why."""
    v = vring(1000)
    v.start(MEM, PACKED)
    assert v.q.size == 1000
    v.stop()
    v.base = 0
    with pytest.raises(VringError, match=r"^ring 1: queue size 1000 is not a power of two up "
                                         r"to 32768 \(a split ring needs one\)$"):
        v.start(MEM, SPLIT)


def test_a_handed_back_state_must_name_a_slot_of_the_odd_ring():
    v = vring(1000)
    v.start(MEM, PACKED)
    v.resume_at(999 | 999 << 16)  # the last slot, second lap
    assert v.q.last_avail == v.q.used_idx == 999
    with pytest.raises(VringError, match="names a slot beyond the queue size 1000"):
        v.resume_at(1000 | 0x8000 | (1000 | 0x8000) << 16)
    v.stop()


# -- driver side: vguest -------------------------------------------------------

def packed_device(max_size: int, queue_size: int = 1024, features: int = MODERN_FEATURES
                  | 1 << Feature.RING_PACKED) -> tuple[ModernNetModel, VirtioNetDevice]:
    model = ModernNetModel(features=features, max_size=max_size)
    return model, VirtioNetDevice(modern(model), queue_size=queue_size, packed=True,
                                  memory=RING_MEMORY)


@pytest.mark.parametrize("max_size, queue_size, size", [(1000, 1024, 1000), (768, 256, 256),
                                                        (768, 32768, 768), (3, 1000, 3),
                                                        (32768, 255, 255)])
def test_vguest_takes_the_odd_maximum_of_a_packed_device(max_size, queue_size, size):
    model, dev = packed_device(max_size, queue_size)
    dev.open()
    assert isinstance(dev.rx, PackedVirtq) and (dev.rx.size, dev.tx.size) == (size, size)
    assert [q["size"] for q in model.queues[:2]] == [size, size]
    dev.close()


def test_an_odd_size_is_refused_when_the_device_has_only_split_rings():
    model, dev = packed_device(1024, 1000, features=MODERN_FEATURES)
    with pytest.raises(DeviceError, match=r"queue_size 1000 is not a power of two, which a split "
                                          r"ring needs; the device runs split rings \(packed "
                                          r"rings asked for, the device does not offer them\)"):
        dev.open()
    assert model.status & DeviceStatus.FAILED


def test_an_odd_maximum_still_fails_split_rings_naming_the_register():
    model = ModernNetModel(features=MODERN_FEATURES | 1 << Feature.RING_PACKED, max_size=768)
    dev = VirtioNetDevice(modern(model), packed=False, memory=RING_MEMORY)
    with pytest.raises(TransportError, match="queue 0 queue_size reads 768: a split virtqueue "
                                             "size must be a power of two"):
        dev.open()


@pytest.mark.parametrize("max_size", [32769, 65535])
def test_a_maximum_above_32768_is_refused_on_packed_rings_too(max_size):
    model, dev = packed_device(max_size)
    with pytest.raises(TransportError, match=f"queue_size reads {max_size}: a virtqueue size "
                                             "must be up to 32768"):
        dev.open()
    assert model.status & DeviceStatus.FAILED


def test_the_size_asked_for_is_checked_against_the_ring_kind_asked_for():
    with pytest.raises(ValueError, match="virtqueue size 1000 is not a power of two"):
        VirtioNetDevice(modern(ModernNetModel()), queue_size=1000, packed=False)
    for bad in (0, 32769):
        with pytest.raises(ValueError, match=f"virtqueue size {bad} is not in 1..32768"):
            VirtioNetDevice(modern(ModernNetModel()), queue_size=bad, packed=True)
    for bad in (0, 32769, 1.5, True):
        with pytest.raises(ValueError, match="virtqueue size"):
            PackedVirtq(bad)

