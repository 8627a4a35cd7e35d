"""The driver side of one packed virtqueue, in DMA memory (vguest).

``PackedVirtq`` is the packed twin of ``snabbpy.lib.virtio.virtq.Virtq``,
with the same methods and counters, chosen by the device when
``RING_PACKED`` is negotiated. One area of DMA memory holds the ring
(``size`` descriptors of 16 bytes) and, after it, the driver area and the
device area (the two 4-byte event suppression structures). The batch work
is C (``packed_driver.c``), one call per queue per breath.

Every buffer is one descriptor (a packed ring implies VERSION_1, so the
header shares the descriptor with the data); the used descriptors the
device writes are checked (id in range and in flight, length, num_buffers)
and a bad one is counted and dropped, as on the split ring. With
``in_order`` (VIRTIO_F_IN_ORDER negotiated) the buffer ids are the slots
and one used descriptor may stand for a whole batch; a device naming a
slot that is not out stalls the queue (``broken``), counted as bad_id.
"""

from __future__ import annotations

from typing import Any

from snabbpy.core import packet
from snabbpy.core.memory import DMAMemory, dma
from snabbpy.core.native import ffi, lib
from snabbpy.lib.virtio.ring import check_queue_size

#: Counter names of ``struct virtq_stats`` (the split ring's), in its order.
STATS = tuple(name for name, _ in ffi.typeof("struct virtq_stats").fields)
DESC_SIZE = 16
EVENT_SIZE = 4


def area_size(size: int) -> int:
    """Bytes of the one area a ring of ``size`` descriptors takes: the ring,
    then the driver and device event suppression structures."""
    return DESC_SIZE * size + 2 * EVENT_SIZE


class PackedVirtq:
    """One packed virtqueue, driver side.

    ``hdr_size`` is the virtio-net header size (12 with VERSION_1, 10 for
    a device that says otherwise); ``event_idx`` lets the device name the
    slot it wants a kick at; ``in_order`` accepts the device's in-order
    batches (one used descriptor for several buffers); ``stats`` is a ``uint64_t *`` of
    ``len(STATS)`` counters (own private ones when None).
    """

    def __init__(self, size: int, *, hdr_size: int = 12, event_idx: bool = False,
                 mrg_rxbuf: bool = False, use_checksum: bool = False, in_order: bool = False,
                 rx_buffer_size: int = packet.PAYLOAD_SIZE, align: int = 4096,
                 stats: Any = None, memory: DMAMemory = dma) -> None:
        check_queue_size(size, packed=True)  # any size: no power of two needed
        if hdr_size not in (10, 12):
            raise ValueError(f"virtio-net header size must be 10 or 12, not {hdr_size}")
        if not 0 < rx_buffer_size <= packet.PAYLOAD_SIZE:
            raise ValueError(f"rx_buffer_size {rx_buffer_size} is outside 1..{packet.PAYLOAD_SIZE}")
        self._size, self.memory = size, memory
        total = area_size(size)
        self.area = memory.allocate(total, align)
        ffi.memmove(ffi.cast("uint8_t *", self.area), b"\0" * total, total)
        self._private = [ffi.new("struct packet *[]", size), ffi.new("uint16_t[]", size),
                         ffi.new("uint32_t[]", size)]
        self._stats = stats if stats is not None else ffi.new("uint64_t[]", len(STATS))
        self.c = vq = ffi.new("struct pvirtq *")
        vq.desc = ffi.cast("uint8_t *", self.area)
        vq.driver_event = ffi.cast("struct pk_event *", self.driver_address)
        vq.device_event = ffi.cast("struct pk_event *", self.device_address)
        vq.owner, vq.free_ids, vq.used_len = self._private
        vq.stats = ffi.cast("struct virtq_stats *", self._stats)
        vq.size, vq.rx_buffer_size, vq.hdr_size = size, rx_buffer_size, hdr_size
        vq.event_idx, vq.mrg_rxbuf, vq.use_checksum = event_idx, mrg_rxbuf, use_checksum
        vq.in_order = in_order
        lib.pvirtq_reset(vq)

    @property
    def size(self) -> int:
        """Number of descriptors (the queue size)."""
        return self._size

    @property
    def desc_address(self) -> int:
        """Virtual address of the descriptor ring."""
        return self.area

    @property
    def driver_address(self) -> int:
        """Virtual address of the driver area (our event suppression)."""
        return self.area + DESC_SIZE * self._size

    @property
    def device_address(self) -> int:
        """Virtual address of the device area (the device's event suppression)."""
        return self.driver_address + EVENT_SIZE

    def device_addresses(self) -> tuple[int, int, int]:
        """(ring, driver area, device area) as the device must be told them."""
        t = self.memory.dma_address
        return t(self.desc_address), t(self.driver_address), t(self.device_address)

    def transmit(self, link_c: Any, max_packets: int = 1 << 30) -> int:
        """Puts packets from the ``struct link *`` on the ring, as many as fit."""
        return lib.pvirtq_tx_packets(self.c, link_c, max_packets)

    def reclaim(self) -> int:
        """Frees the packets the device has finished sending."""
        return lib.pvirtq_tx_reclaim(self.c)

    def push(self, link_c: Any, max_packets: int = 1 << 30) -> bool:
        """As ``Virtq.push``: reclaim and transmit in one call; True when
        the device wants a kick."""
        link = ffi.NULL if link_c is None else link_c
        return bool(lib.pvirtq_tx_push(self.c, link, max_packets))

    def refill(self) -> int:
        """Posts fresh receive buffers under every free buffer id."""
        return lib.pvirtq_rx_refill(self.c)

    def receive(self, link_c: Any, max_packets: int = 1 << 30) -> int:
        """Moves received packets to the ``struct link *`` (while it has room)."""
        return lib.pvirtq_rx_packets(self.c, link_c, max_packets)

    def notify_needed(self) -> bool:
        """True when the device wants a kick for the buffers added since the
        last call (its event suppression structure)."""
        return bool(lib.pvirtq_notify_needed(self.c))

    def in_flight(self) -> int:
        """Buffers the device holds now."""
        return lib.pvirtq_in_flight(self.c)

    @property
    def broken(self) -> bool:
        """True while the queue stalls on an in-order used descriptor that
        names a slot not out (a packed ring has no used index to run away)."""
        return bool(self.c.broken)

    @property
    def stall_reason(self) -> str:
        """Why the queue is stalled, for the report ("" while it is not)."""
        return ("the device's in-order used descriptor names a slot not given to it"
                if self.broken else "")

    def stats(self) -> dict[str, int]:
        """This queue's counters by name."""
        return {name: int(self._stats[i]) for i, name in enumerate(STATS)}

    def release_all(self) -> int:
        """Frees every packet the ring holds. Only once the device is reset."""
        return lib.pvirtq_release_all(self.c)

