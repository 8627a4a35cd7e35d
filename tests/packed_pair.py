"""A packed ring's two ends in one process, for the tests: vguest's driver
ring (``PackedVirtq``) and the device ring VhostUser runs (``pd_queue``),
over the same DMA memory with identity addresses, no socket between."""

from __future__ import annotations

from snabbpy.core.link import Link
from snabbpy.core.memory import dma
from snabbpy.core.native import ffi, lib
from snabbpy.lib.virtio.packed_virtq import PackedVirtq

#: Start of a new packed ring: slot 0, wrap counters 1, both halves.
FRESH = 0x80008000


def device_memory():
    """A ``struct dr_memory *`` of every DMA chunk (guest = user = host)."""
    mem = ffi.new("struct dr_memory *")
    lib.dr_memory_clear(mem)
    for chunk in dma.chunks:
        assert lib.dr_memory_add(mem, chunk.dma_address, chunk.address, chunk.size,
                                 chunk.address) == 0
    return mem


class PackedPair:
    """Driver rings ``rx``/``tx`` and device queues ``dev_rx``/``dev_tx``
    (both ends in-order, VIRTIO_F_IN_ORDER negotiated, when ``in_order``)."""

    def __init__(self, size: int = 64, *, mrg_rxbuf: bool = True, event_idx: bool = False,
                 indirect: bool = False, rx_buffer_size: int = 2048,
                 in_order: bool = False) -> None:
        self.rx = PackedVirtq(size, mrg_rxbuf=mrg_rxbuf, event_idx=event_idx,
                              rx_buffer_size=rx_buffer_size, in_order=in_order)
        self.tx = PackedVirtq(size, event_idx=event_idx, in_order=in_order)
        self.mem = device_memory()
        self.flags = (lib.DR_F_VERSION_1 | lib.DR_F_MRG_RXBUF * mrg_rxbuf
                      | lib.DR_F_EVENT_IDX * event_idx | lib.DR_F_INDIRECT * indirect
                      | lib.PD_F_IN_ORDER * in_order)
        self.stats = [ffi.new("struct dr_stats *") for _ in range(2)]
        self.dev = [ffi.new("struct pd_queue *") for _ in range(2)]
        for q in self.dev:
            self.start(q, FRESH)

    def start(self, q, base: int) -> None:
        """(Re)starts device queue ``q`` on its driver ring at ring state ``base``."""
        i = self.dev.index(q)
        vq = (self.rx, self.tx)[i]
        assert lib.pd_queue_start(q, self.mem, self.stats[i], vq.size, vq.desc_address,
                                  vq.driver_address, vq.device_address, base, self.flags) == 0

    @property
    def dev_rx(self):
        """The device's queue for the guest's receive ring."""
        return self.dev[0]

    @property
    def dev_tx(self):
        """The device's queue for the guest's transmit ring."""
        return self.dev[1]

    def take(self, out: Link, max_packets: int = 1 << 20) -> int:
        """Guest TX ring -> ``out`` (the device's pd_tx)."""
        return lib.pd_tx(self.dev_tx, out.c, max_packets)

    def give(self, inp: Link, max_packets: int = 1 << 20) -> int:
        """``inp`` -> guest RX ring (the device's pd_rx)."""
        return lib.pd_rx(self.dev_rx, inp.c, max_packets)

    def counters(self, i: int) -> dict[str, int]:
        """Device counters of queue ``i`` (0 rx, 1 tx) by name."""
        s = self.stats[i]
        return {name: getattr(s, name) for name, _ in ffi.typeof("struct dr_stats").fields}

    def close(self) -> int:
        """Frees what both driver rings hold; returns how many packets."""
        return self.rx.release_all() + self.tx.release_all()
