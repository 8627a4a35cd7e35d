"""Split virtqueue layout: where each part of a ring lives, for a queue size.

A split virtqueue has three parts (virtio 1.x section 2.7):

- descriptor table: ``size`` x 16 bytes, 16-byte aligned;
- available ring (driver -> device): flags, idx, ring[size] of u16, then
  ``used_event`` (u16) when ``RING_EVENT_IDX`` is negotiated; 2-byte aligned;
- used ring (device -> driver): flags, idx, ring[size] of (u32 id, u32 len),
  then ``avail_event`` (u16) with ``RING_EVENT_IDX``; 4-byte aligned.

The *modern* transport places the three parts anywhere (each address given
separately).  The *legacy* PCI transport gives one page frame number, so the
parts are packed into one area with the used ring on the next 4096 boundary.
No memory is touched here; the virtqueue code maps these numbers onto memory.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_QUEUE_SIZE = 32768
DESC_SIZE = 16
AVAIL_ELEM_SIZE = 2
USED_ELEM_SIZE = 8
RING_HEADER_SIZE = 4  # flags (u16) + idx (u16)
EVENT_SIZE = 2  # used_event / avail_event (u16)
LEGACY_ALIGN = 4096

DESC_ALIGN = 16
AVAIL_ALIGN = 2
USED_ALIGN = 4


def check_queue_size(size: int, packed: bool = False) -> int:
    """Return ``size`` if a ring can have it, else raise ValueError: a split
    ring's size is a power of two in 1..32768 (virtio 1.x 2.7), a packed
    ring's (``packed``) any number in 1..32768 (2.8)."""
    if not isinstance(size, int) or isinstance(size, bool):
        raise ValueError(f"virtqueue size must be an integer, got {size!r}")
    if not 1 <= size <= MAX_QUEUE_SIZE:
        raise ValueError(f"virtqueue size {size} is not in 1..{MAX_QUEUE_SIZE}")
    if not packed and size & (size - 1):
        raise ValueError(f"virtqueue size {size} is not a power of two, which a split ring "
                         f"needs (a packed ring takes any size up to {MAX_QUEUE_SIZE})")
    return size


def check_any_queue_size(size: int) -> int:
    """``size`` if some ring can have it (any in 1..32768: a packed ring),
    else ValueError; whether a split ring can is checked once the ring
    kind is known (``check_queue_size``)."""
    return check_queue_size(size, packed=True)


def align_up(value: int, align: int) -> int:
    """Round ``value`` up to a multiple of ``align`` (a power of two)."""
    return (value + align - 1) & ~(align - 1)


def desc_table_size(size: int) -> int:
    """Bytes of the descriptor table."""
    return DESC_SIZE * check_queue_size(size)


def avail_ring_size(size: int, event_idx: bool = True) -> int:
    """Bytes of the available ring, with ``used_event`` when ``event_idx``."""
    return RING_HEADER_SIZE + AVAIL_ELEM_SIZE * check_queue_size(size) + EVENT_SIZE * event_idx


def used_ring_size(size: int, event_idx: bool = True) -> int:
    """Bytes of the used ring, with ``avail_event`` when ``event_idx``."""
    return RING_HEADER_SIZE + USED_ELEM_SIZE * check_queue_size(size) + EVENT_SIZE * event_idx


@dataclass(frozen=True)
class RingLayout:
    """Offsets and sizes of the three parts of a split ring in one area.

    Offsets are relative to the start of the area; ``total`` is the bytes the
    area needs.  ``used_event`` / ``avail_event`` are the offsets of the event
    index fields (meaningful only when ``RING_EVENT_IDX`` is negotiated).
    """

    queue_size: int
    desc_offset: int
    desc_size: int
    avail_offset: int
    avail_size: int
    used_offset: int
    used_size: int

    @property
    def total(self) -> int:
        """Bytes from the start of the area to the end of the used ring."""
        return self.used_offset + self.used_size

    @property
    def used_event_offset(self) -> int:
        """Offset of ``used_event``, the u16 after the available ring's entries."""
        return self.avail_offset + RING_HEADER_SIZE + AVAIL_ELEM_SIZE * self.queue_size

    @property
    def avail_event_offset(self) -> int:
        """Offset of ``avail_event``, the u16 after the used ring's entries."""
        return self.used_offset + RING_HEADER_SIZE + USED_ELEM_SIZE * self.queue_size


def legacy_layout(size: int, align: int = LEGACY_ALIGN) -> RingLayout:
    """Layout for the legacy PCI transport (virtio 0.9.5 "queue PFN").

    The legacy layout always reserves the event index fields, whether or not
    ``RING_EVENT_IDX`` is negotiated, and starts the used ring on the next
    ``align`` boundary after the available ring.
    """
    desc = desc_table_size(size)
    avail = avail_ring_size(size, event_idx=True)
    used_offset = align_up(desc + avail, align)
    return RingLayout(size, 0, desc, desc, avail, used_offset, used_ring_size(size, True))


def modern_layout(size: int, event_idx: bool = True) -> RingLayout:
    """A compact single-area layout honouring the modern alignments (16/2/4).

    The modern transport allows the parts anywhere; packing them into one
    area like this is a convenient choice for a driver that allocates one
    block of DMA memory per queue.
    """
    desc = desc_table_size(size)
    avail = avail_ring_size(size, event_idx)
    avail_offset = align_up(desc, AVAIL_ALIGN)
    used_offset = align_up(avail_offset + avail, USED_ALIGN)
    used = used_ring_size(size, event_idx)
    return RingLayout(size, 0, desc, avail_offset, avail, used_offset, used)


def check_modern_addresses(desc: int, avail: int, used: int) -> None:
    """Raise ValueError unless the three ring addresses meet the modern alignments."""
    for name, addr, align in (("descriptor table", desc, DESC_ALIGN),
                              ("available ring", avail, AVAIL_ALIGN),
                              ("used ring", used, USED_ALIGN)):
        if addr % align:
            raise ValueError(f"{name} address {addr:#x} is not {align}-byte aligned")
