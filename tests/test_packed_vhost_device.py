"""What packed rings change in VhostUser's request handling: the feature
is offered unless configured off, a packed ring's base is the 32-bit ring
state (wrap counters in bits 15 and 31, so a reconnecting frontend resumes
mid-lap), and any queue size up to 32768 is accepted."""

from __future__ import annotations

import pytest

from snabbpy.apps.vguest.device import wanted_features
from snabbpy.apps.vhost import VhostUser
from snabbpy.apps.vhost.device import SUPPORTED_FEATURES, DeviceError, VhostDevice
from snabbpy.core import config
from snabbpy.core.native import ffi
from snabbpy.lib.vhost_user import Message, Request, VringState
from snabbpy.lib.virtio.constants import Feature

PACKED = 1 << Feature.RING_PACKED


def device(features: int) -> VhostDevice:
    d = VhostDevice(SUPPORTED_FEATURES, (ffi.new("struct dr_stats *"),
                                         ffi.new("struct dr_stats *")))
    d.handle(Message(Request.SET_FEATURES, 0, features))
    return d


def test_packed_is_offered_unless_configured_off(tmp_path):
    on = VhostUser(config.validate("v", VhostUser, {"socket_path": str(tmp_path / "a")}))
    off = VhostUser(config.validate("v", VhostUser, {"socket_path": str(tmp_path / "b"),
                                                     "packed": False}))
    assert on.device.offered & PACKED and not off.device.offered & PACKED
    on.stop()
    off.stop()


def test_packed_rings_are_offered_and_asked_for_with_several_queue_pairs(tmp_path):
    """Both ends run the control queue on packed rings too, so packed comes
    with MQ (as DPDK's and QEMU's guests negotiate it)."""
    mq = VhostUser(config.validate("v", VhostUser, {"socket_path": str(tmp_path / "a"),
                                                    "queues": 2}))
    assert mq.device.offered & PACKED and mq.device.offered >> Feature.NET_MQ & 1
    mq.stop()
    assert wanted_features(True, False, False, multiqueue=True, packed=True) & PACKED
    assert not wanted_features(True, False, False, multiqueue=True) & PACKED


def test_a_packed_ring_base_carries_both_wrap_counters():
    d = device(PACKED | 1 << Feature.VERSION_1)
    for state in (0x80058005, 0x00050005):  # slot 5, wrap counters 1 / 0 (second lap)
        d.handle(Message(Request.SET_VRING_BASE, 0, VringState(1, state)))
        assert d.tx.base == state
        assert d.handle(Message(Request.GET_VRING_BASE, 0, VringState(1, 0))) == VringState(
            1, state)


def test_a_split_ring_base_is_16_bits():
    d = device(1 << Feature.VERSION_1)
    with pytest.raises(DeviceError, match="does not fit a 16-bit index"):
        d.handle(Message(Request.SET_VRING_BASE, 0, VringState(1, 0x80008000)))


def test_packed_rings_take_any_queue_size():
    d = device(PACKED | 1 << Feature.VERSION_1)
    d.handle(Message(Request.SET_VRING_NUM, 0, VringState(0, 1000)))
    assert d.rx.num == 1000
    with pytest.raises(DeviceError, match="power of two"):
        device(1 << Feature.VERSION_1).handle(Message(Request.SET_VRING_NUM, 0,
                                                      VringState(0, 1000)))
