"""The driver's virtqueue paired in memory with the device side the
VhostUser app uses (snabbpy/lib/virtio/device_ring.c): two implementations
written apart, from the spec, must agree - with no socket in between."""

from __future__ import annotations

import pytest
from helpers import drain, fill

from snabbpy.apps.vguest.device import VirtioNetDevice
from snabbpy.core.link import Link
from snabbpy.core.memory import dma
from snabbpy.core.native import ffi, lib
from snabbpy.testing.vguest_model import ModelDevice, open_driver


class DeviceRings:
    """dr_* queues over this process's DMA memory (identity addresses)."""

    def __init__(self, model: ModelDevice, dev: VirtioNetDevice) -> None:
        self.mem = ffi.new("struct dr_memory *")
        lib.dr_memory_clear(self.mem)
        for chunk in dma.chunks:
            lib.dr_memory_add(self.mem, chunk.dma_address, chunk.address, chunk.size,
                              chunk.address)
        flags = lib.DR_F_VERSION_1 * (dev.rx.c.hdr_size == 12)
        flags |= lib.DR_F_MRG_RXBUF * bool(dev.rx.c.mrg_rxbuf)
        flags |= lib.DR_F_EVENT_IDX * bool(dev.rx.c.event_idx)
        self.stats = [ffi.new("struct dr_stats *") for _ in range(2)]
        self.q = [ffi.new("struct dr_queue *") for _ in range(2)]
        for i, mq in enumerate(model.queues):
            assert lib.dr_queue_start(self.q[i], self.mem, self.stats[i], mq.size, mq.desc,
                                      mq.avail, mq.used, 0, flags) == 0

    def take(self, out: Link) -> int:
        """Guest TX queue -> ``out``."""
        return lib.dr_tx(self.q[1], out.c, 1 << 20)

    def give(self, inp: Link) -> int:
        """``inp`` -> guest RX queue."""
        return lib.dr_rx(self.q[0], inp.c, 1 << 20)


def pair(size: int = 64, **options):
    """vguest's driver and the device rings, on one model's queues."""
    model, dev = open_driver(size, **options)
    return dev, DeviceRings(model, dev)


@pytest.mark.parametrize("options", [{}, {"mrg_rxbuf": False}, {"event_idx": True}])
def test_packets_cross_both_ways(options, no_leaks):
    dev, device = pair(**options)
    payloads = [bytes([i]) * (60 + i) for i in range(50)]
    to_device, from_device = Link(), Link()
    fill(to_device, payloads)
    assert dev.tx.transmit(to_device.c) == 50
    got = Link()
    assert device.take(got) == 50
    assert dev.tx.reclaim() == 50
    echoed = drain(got)
    assert echoed == payloads
    fill(from_device, echoed)
    assert device.give(from_device) == 50
    out = Link()
    assert dev.rx.receive(out.c) == 50
    assert drain(out) == payloads
    dev.close()


def test_jumbo_frames_use_merged_buffers(no_leaks):
    dev, device = pair(rx_buffer_size=2048)
    jumbo = bytes(range(256)) * 35
    inp = Link()
    fill(inp, [jumbo, jumbo[:3000]])
    assert device.give(inp) == 2
    out = Link()
    assert dev.rx.receive(out.c) == 2
    assert drain(out) == [jumbo, jumbo[:3000]]
    dev.close()


def test_device_keeps_packets_when_the_guest_has_no_buffers(no_leaks):
    dev, device = pair(size=8)
    inp = Link()
    fill(inp, [b"\x01" * 60] * 20)
    assert device.give(inp) == 8 and inp.nreadable() == 12
    out = Link()
    assert dev.rx.receive(out.c) == 8
    dev.rx.refill()
    assert device.give(inp) == 8
    assert dev.rx.receive(out.c) == 8
    inp.drain()
    out.drain()
    dev.close()
