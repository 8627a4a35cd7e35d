"""The VGuest app: its configuration keys, and push/pull in a graph whose
device is the in-process model."""

from __future__ import annotations

import pytest

from snabbpy.apps.vguest import VGuest, vguest
from snabbpy.apps.vguest.transport import TransportError
from snabbpy.core import config, packet
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine
from snabbpy.core.native import lib
from snabbpy.lib.pci import PCIError
from snabbpy.testing.vguest_model import ModelDevice


def configure(nic: dict, extra_links: bool = True) -> Engine:
    c = config.new()
    config.app(c, "nic", "vguest.VGuest", nic)
    if extra_links:
        config.app(c, "sink", "basic.Sink")
        config.link(c, "nic.output -> sink.input")
    e = Engine()
    e.configure(c)
    return e


@pytest.mark.parametrize("nic, message", [
    ({}, "exactly one of pciaddr and vhost_user"),
    ({"pciaddr": "0000:00:03.0", "vhost_user": "/x"}, "exactly one of pciaddr and vhost_user"),
    ({"vhost_user": "/x", "queue_size": 0}, "queue_size.*not in 1..32768"),
    ({"vhost_user": "/x", "queue_size": 32769}, "queue_size.*not in 1..32768"),
    ({"vhost_user": "/x", "queue_size": 100, "packed": False},
     "queue_size: virtqueue size 100 is not a power of two, which a split ring needs"),
    ({"vhost_user": "/x", "is_server": "yes"}, "is_server"),
    ({"vhost_user": "/x", "bogus": 1}, "bogus"),
    ({"vhost_user": "/x", "rx_buffer_size": 10}, "rx_buffer_size"),
])
def test_configuration_mistakes_name_the_key(nic, message):
    with pytest.raises(ConfigError, match=message):
        configure(nic)


def test_a_pci_address_that_is_no_virtio_device_is_named(monkeypatch):
    # Keep this process on its shared memory: a PCI device would switch
    # it to hugepages for good.
    monkeypatch.setattr(VGuest, "dma_backend", classmethod(lambda cls, conf: None))
    with pytest.raises((ConfigError, TransportError), match="0000:00:1f.7"):
        configure({"pciaddr": "0000:00:1f.7"})


def test_short_name_resolves_to_the_app_class():
    assert config.resolve_class("vguest.VGuest") is VGuest


@pytest.fixture
def model(monkeypatch):
    """Every VGuest in the test talks to one ModelDevice."""
    device = ModelDevice(max_size=64)
    monkeypatch.setattr(vguest, "open_transport", lambda conf: device)
    return device


def test_push_sends_the_input_and_pull_delivers_received_packets(model, no_leaks):
    c = config.new()
    config.app(c, "source", "basic.Source", {"size": 100})
    config.app(c, "nic", "vguest.VGuest", {"vhost_user": "model", "queue_size": 64})
    config.app(c, "sink", "basic.Sink")
    config.link(c, "source.output -> nic.input")
    config.link(c, "nic.output -> sink.input")
    e = Engine()
    e.configure(c)
    e.breathe()
    sent = model.take_transmitted()
    assert len(sent) == 64 and all(f == bytes(100) for _, f in sent)
    assert e.links["source.output -> nic.input"].nreadable() > 0  # waiting, not dropped
    for i in range(10):
        model.deliver(bytes([i]) * 80)
    e.breathe()
    stats = e.apps["nic"].stats
    assert stats["rx_packets"] == 10 and stats["tx_packets"] >= 64
    assert e.counters()["links"]["nic.output -> sink.input"]["txpackets"] == 10
    assert model.rxq.pending() == 64  # refilled
    assert "rx_packets: 10" in e.apps["nic"].report()
    e.stop()
    assert model.closed


def test_push_kicks_the_transmit_queue_only_when_the_device_asks(model, no_leaks):
    c = config.new()
    config.app(c, "source", "basic.Source", {"size": 60})
    config.app(c, "nic", "vguest.VGuest", {"vhost_user": "model", "queue_size": 64})
    config.link(c, "source.output -> nic.input")
    e = Engine()
    e.configure(c)
    e.breathe()  # used->flags 0: the device wants to hear of new buffers
    assert model.notified[1] == 1 == e.apps["nic"].stats["tx_notifications"]
    model.take_transmitted()
    model.txq.set_used_flags(lib.VRING_USED_F_NO_NOTIFY)
    e.breathe()
    assert model.notified[1] == 1 and e.apps["nic"].stats["tx_packets"] == 128
    e.stop()


def test_stop_frees_every_packet_the_rings_held(model, no_leaks):
    before = packet.in_use()
    e = configure({"vhost_user": "model", "queue_size": 64})
    assert packet.in_use() == before + 64
    e.stop()


class FailingModel(ModelDevice):
    """A device that breaks while its transmit queue is enabled, after the
    receive ring already holds packets."""

    def enable_queue(self, queue: int) -> None:
        if queue == 1:
            raise TransportError("model: queue 1 would not enable")
        super().enable_queue(queue)


def test_a_device_failing_during_open_is_one_clear_error_and_frees_its_packets(
        monkeypatch, no_leaks):
    device = FailingModel(max_size=64)
    monkeypatch.setattr(vguest, "open_transport", lambda conf: device)
    with pytest.raises(ConfigError, match="queue 1 would not enable"):
        configure({"vhost_user": "model", "queue_size": 64})


class VanishingModel(ModelDevice):
    """A PCI device whose registers stop answering while it is set up."""

    def enable_queue(self, queue: int) -> None:
        raise PCIError("I/O BAR resource0: read at 0x12: No such device")


def test_registers_failing_during_open_are_one_clear_error(monkeypatch, no_leaks):
    device = VanishingModel(max_size=64)
    monkeypatch.setattr(vguest, "open_transport", lambda conf: device)
    with pytest.raises(ConfigError, match="No such device"):
        configure({"vhost_user": "model", "queue_size": 64})


def test_stop_frees_every_packet_even_when_the_registers_are_gone(model, no_leaks):
    e = configure({"vhost_user": "model", "queue_size": 64})
    device = e.apps["nic"].device

    def gone() -> None:
        raise PCIError("I/O BAR resource0: write at 0x12: No such device")

    model.reset = gone
    e.stop()
    assert "No such device" in device.close_error


def test_a_device_running_its_used_idx_away_stalls_the_queue_and_the_report_says_so(
        model, no_leaks):
    e = configure({"vhost_user": "model", "queue_size": 64})
    nic = e.apps["nic"]
    model.rxq.publish(64 + 10)  # the receive ring's used idx, beyond any it could hold
    e.breathe()
    assert nic.stats["rx_bad_idx"] == 1 and nic.stats["rx_packets"] == 0
    assert "rx queue stalled: the device's used idx is out of range" in nic.report()
    e.stop()
