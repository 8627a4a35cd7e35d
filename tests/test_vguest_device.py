"""virtio-net device initialisation against the in-process device model:
negotiation, refusals, config space, orderly close."""

from __future__ import annotations

import pytest

from snabbpy.apps.vguest.device import DeviceError, VirtioNetDevice
from snabbpy.core import packet
from snabbpy.core.link import Link
from snabbpy.lib.virtio import DeviceStatus, Feature, feature_mask
from snabbpy.testing.vguest_model import ModelDevice


def test_init_sequence_ends_driver_ok_with_rx_ring_full(no_leaks):
    model = ModelDevice(max_size=32)
    dev = VirtioNetDevice(model, queue_size=32)
    dev.open()
    ok = (DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK
          | DeviceStatus.DRIVER_OK)
    assert model.status == ok
    assert all(q.enabled for q in model.queues)
    assert model.rxq.pending() == 32
    assert model.notified[0] == 1  # told about the receive buffers
    dev.close()


def test_negotiates_only_what_both_sides_want(no_leaks):
    model = ModelDevice()
    dev = VirtioNetDevice(model, mrg_rxbuf=False)
    dev.open()
    assert dev.has(Feature.VERSION_1) and dev.has(Feature.ANY_LAYOUT)
    assert not dev.has(Feature.NET_MRG_RXBUF)
    assert not dev.has(Feature.NET_GUEST_TSO4)   # offered, never wanted
    assert not dev.has(Feature.NET_CSUM)         # use_checksum is off
    assert model.driver_features == dev.features
    dev.close()


def test_refused_features_fail_the_device_with_a_clear_error(no_leaks):
    model = ModelDevice(refuse_features_ok=True)
    dev = VirtioNetDevice(model)
    with pytest.raises(DeviceError, match="refused features .*VERSION_1"):
        dev.open()
    assert model.status & DeviceStatus.FAILED


def test_a_device_without_queues_is_refused(no_leaks):
    model = ModelDevice()
    model.max_queue_size = lambda queue: 0
    with pytest.raises(DeviceError, match="no queue 0"):
        VirtioNetDevice(model).open()
    assert model.status & DeviceStatus.FAILED


def test_queue_size_is_capped_by_the_device(no_leaks):
    model = ModelDevice(max_size=64)
    dev = VirtioNetDevice(model, queue_size=1024)
    dev.open()
    assert dev.rx.size == dev.tx.size == 64
    dev.close()


def test_legacy_device_skips_features_ok_and_uses_10_byte_headers(no_leaks):
    model = ModelDevice(features=feature_mask(Feature.NET_MAC), legacy=True)
    dev = VirtioNetDevice(model)
    dev.open()
    assert not model.status & DeviceStatus.FEATURES_OK
    assert model.status & DeviceStatus.DRIVER_OK
    assert dev.rx.c.hdr_size == 10 and not dev.rx.c.one_desc
    dev.close()


def test_mac_and_link_status_come_from_config_space(no_leaks):
    model = ModelDevice(mac=b"\x02\x11\x22\x33\x44\x55")
    dev = VirtioNetDevice(model)
    dev.open()
    assert dev.mac == b"\x02\x11\x22\x33\x44\x55"
    assert dev.link_up
    model.link_status = 0
    assert not dev.link_up
    dev.close()


def test_without_mac_feature_there_is_no_mac(no_leaks):
    model = ModelDevice(features=feature_mask(Feature.VERSION_1))
    dev = VirtioNetDevice(model)
    dev.open()
    assert dev.mac is None and dev.link_up
    dev.close()


def test_close_resets_the_device_and_frees_every_packet_on_the_rings(no_leaks):
    model = ModelDevice(max_size=16)
    dev = VirtioNetDevice(model, queue_size=16)
    dev.open()
    link = Link()
    for _ in range(5):
        link.transmit(packet.from_bytes(b"x" * 60))
    dev.tx.transmit(link.c)
    resets = model.resets
    assert dev.close() == 16 + 5
    assert model.resets == resets + 1 and model.status == 0 and model.closed
