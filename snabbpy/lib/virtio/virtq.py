"""The driver side of one split virtqueue, in DMA memory.

``Virtq`` allocates the descriptor table and the avail/used rings in one
area of DMA memory (placed by a ``RingLayout`` the transport chooses), keeps
the driver's private bookkeeping (free list, the packet each descriptor
holds) out of the device's reach, and hands the batch work to C
(``virtq.c``): one call per queue per breath.

Transmit: ``transmit(link)`` puts what fits from a link on the ring (the
virtio-net header goes in each packet's headroom, so one descriptor covers
header and data when the layout allows, else a chain of two), ``reclaim()``
frees the packets the device has sent. Receive: ``refill()`` posts fresh
packets as device-writable buffers, ``receive(link)`` takes the filled ones,
strips the header, merges MRG_RXBUF buffers, and transmits them on a link.
After adding buffers ask ``notify_needed()`` and kick the device if true.

The used ring is written by the device and not trusted: an entry naming a
descriptor out of range or not in flight, a length beyond its buffer, or
used idx moving by more than the queue size is counted and dropped.
"""

from __future__ import annotations

from typing import Any

from snabbpy.core import packet
from snabbpy.core.memory import DMAMemory, dma
from snabbpy.core.native import ffi, lib
from snabbpy.lib.virtio.ring import RingLayout, check_queue_size

#: Counter names of ``struct virtq_stats``, in its order.
STATS = ("packets", "bytes", "bad_id", "bad_len", "bad_idx", "oversize",
         "bad_num_buffers", "notifications", "nomem", "unmapped")


class Virtq:
    """One split virtqueue, driver side.

    ``layout`` places the rings in one area aligned to ``align``;
    ``hdr_size`` is the virtio-net header size (10 or 12); ``one_desc`` puts
    header and data in one descriptor (ANY_LAYOUT or VERSION_1, and always
    for MRG_RXBUF receive buffers); ``stats`` is a ``uint64_t *`` of
    ``len(STATS)`` counters (own private ones when None).
    """

    def __init__(self, layout: RingLayout, *, hdr_size: int = 12, one_desc: bool = True,
                 event_idx: bool = False, mrg_rxbuf: bool = False, use_checksum: bool = False,
                 rx_buffer_size: int = packet.PAYLOAD_SIZE, align: int = 4096,
                 stats: Any = None, memory: DMAMemory = dma) -> None:
        size = check_queue_size(layout.queue_size)
        if hdr_size not in (10, 12):
            raise ValueError(f"virtio-net header size must be 10 or 12, not {hdr_size}")
        if not 0 < rx_buffer_size <= packet.PAYLOAD_SIZE:
            raise ValueError(f"rx_buffer_size {rx_buffer_size} is outside 1..{packet.PAYLOAD_SIZE}")
        self.layout, self.memory = layout, memory
        self.area = memory.allocate(layout.total, align)
        ffi.memmove(ffi.cast("uint8_t *", self.area), b"\0" * layout.total, layout.total)
        self._private = [ffi.new("struct packet *[]", size), ffi.new("uint16_t[]", size),
                         ffi.new("uint8_t[]", size)]
        self._stats = stats if stats is not None else ffi.new("uint64_t[]", len(STATS))
        self.c = vq = ffi.new("struct virtq *")
        vq.desc = ffi.cast("struct vring_desc *", self.desc_address)
        vq.avail = ffi.cast("struct vring_avail *", self.avail_address)
        vq.used = ffi.cast("struct vring_used *", self.used_address)
        vq.used_event = ffi.cast("uint16_t *", self.area + layout.used_event_offset)
        vq.avail_event = ffi.cast("uint16_t *", self.area + layout.avail_event_offset)
        vq.owner, vq.next, vq.ndesc = self._private
        vq.stats = ffi.cast("struct virtq_stats *", self._stats)
        vq.size, vq.rx_buffer_size, vq.hdr_size = size, rx_buffer_size, hdr_size
        vq.event_idx, vq.one_desc = event_idx, one_desc
        vq.mrg_rxbuf, vq.use_checksum = mrg_rxbuf, use_checksum
        lib.virtq_reset(vq)

    @property
    def size(self) -> int:
        """Number of descriptors (the queue size)."""
        return self.layout.queue_size

    @property
    def desc_address(self) -> int:
        """Virtual address of the descriptor table."""
        return self.area + self.layout.desc_offset

    @property
    def avail_address(self) -> int:
        """Virtual address of the available ring."""
        return self.area + self.layout.avail_offset

    @property
    def used_address(self) -> int:
        """Virtual address of the used ring."""
        return self.area + self.layout.used_offset

    def device_addresses(self) -> tuple[int, int, int]:
        """(desc, avail, used) as the device must be told them."""
        t = self.memory.dma_address
        return t(self.desc_address), t(self.avail_address), t(self.used_address)

    def transmit(self, link_c: Any, max_packets: int = 1 << 30) -> int:
        """Puts packets from the ``struct link *`` on the ring, as many as
        fit; the rest stay on the link. Returns how many went."""
        return lib.virtq_tx_packets(self.c, link_c, max_packets)

    def reclaim(self) -> int:
        """Frees the packets the device has finished sending."""
        return lib.virtq_tx_reclaim(self.c)

    def push(self, link_c: Any, max_packets: int = 1 << 30) -> bool:
        """One breath of transmit in one call: reclaims, puts packets from
        the ``struct link *`` (None: only reclaims) on the ring, and goes
        round again while the device hands slots back and the link has
        packets. True when the device wants a kick for them."""
        return bool(lib.virtq_tx_push(self.c, ffi.NULL if link_c is None else link_c,
                                      max_packets))

    def refill(self) -> int:
        """Posts fresh receive buffers into every free descriptor."""
        return lib.virtq_rx_refill(self.c)

    def receive(self, link_c: Any, max_packets: int = 1 << 30) -> int:
        """Moves received packets to the ``struct link *`` (while it has room)."""
        return lib.virtq_rx_packets(self.c, link_c, max_packets)

    def notify_needed(self) -> bool:
        """True when the device wants a kick for the buffers added since the
        last call (used flags, or avail_event with RING_EVENT_IDX)."""
        return bool(lib.virtq_notify_needed(self.c))

    def in_flight(self) -> int:
        """Buffers the device holds now."""
        return lib.virtq_in_flight(self.c)

    @property
    def broken(self) -> bool:
        """True while the device's used idx is more than the queue size ahead."""
        return bool(self.c.broken)

    @property
    def stall_reason(self) -> str:
        """Why the queue is stalled, for the report ("" while it is not)."""
        return "the device's used idx is out of range" if self.broken else ""

    def stats(self) -> dict[str, int]:
        """This queue's counters by name."""
        return {name: int(self._stats[i]) for i, name in enumerate(STATS)}

    def release_all(self) -> int:
        """Frees every packet the ring holds. Only once the device is reset:
        it must not touch the buffers any more."""
        return lib.virtq_release_all(self.c)
