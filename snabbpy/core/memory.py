"""DMA memory: where packets and virtqueue rings live.

All DMA memory lives in one *reservation*: a range of virtual addresses
taken once at start (inaccessible, costing nothing) into which memory is
mapped as it grows. So all packet memory is one contiguous array that never
moves (``packet.memory()``), and a payload is ``memory()[off:off + length]``.

Memory comes in *chunks*. With the default backend every chunk is the next
piece of ONE memfd, mapped shared right after the previous chunk, so that
all of it can be handed to another process (a vhost-user peer) by one file
descriptor as one region however much it grows. Chunks are large and
sparse: the kernel backs pages only once they are touched.

A device reaches this memory by *DMA address*. With the default backend
that is simply the virtual address (what a vhost-user frontend announces in
its memory table). The hugepage backend (``snabbpy.core.hugepages``), for
PCI devices inside a VM, maps hugepages and translates to physical
addresses, page by page. Either way every chunk's translation goes into one
table in C (``dma.c``), which drivers' C code consults with
``dma_translate()``.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from snabbpy.core.native import lib

#: Bytes of virtual address space reserved for DMA memory (never backed
#: until mapped): more than the packet freelist can ever hold.
RESERVATION_SIZE = 256 << 30
#: The reservation starts on this boundary (a hugepage chunk needs 2 MiB).
RESERVATION_ALIGN = 1 << 30


class Reservation:
    """The one range of virtual addresses that all DMA memory is mapped
    into, in order, without gaps between chunks of the same backend."""

    def __init__(self, size: int = RESERVATION_SIZE) -> None:
        raw = lib.dma_reserve(size + RESERVATION_ALIGN)
        if not raw:
            raise MemoryError(f"cannot reserve {size >> 30} GiB of address space for DMA memory")
        self.base = -(-raw // RESERVATION_ALIGN) * RESERVATION_ALIGN
        self.size = size
        self.used = 0

    def map(self, fd: int, size: int, fd_offset: int = 0, align: int = 4096) -> int:
        """Maps ``size`` bytes of ``fd`` (from ``fd_offset``) at the next free
        address aligned to ``align``; returns that address."""
        start = -(-(self.base + self.used) // align) * align
        if start + size > self.base + self.size:
            raise MemoryError(
                f"DMA memory reservation of {self.size >> 30} GiB is exhausted "
                f"(asked for {size >> 20} MiB more)"
            )
        error = lib.dma_map_fixed(start, size, fd, fd_offset)
        if error:
            raise OSError(error, f"cannot map DMA memory: {os.strerror(error)}")
        self.used = start + size - self.base
        return start


#: The process's reservation: ``packet.memory()`` is an array over it.
reservation = Reservation()


@dataclass
class Chunk:
    """One mapped region of DMA memory."""

    fd: int
    address: int          # virtual address of the first byte
    size: int
    mapping: mmap.mmap | None = field(default=None, repr=False)  # None: in the reservation
    dma_address: int = 0  # what a device uses for the first byte
    used: int = 0         # bump-allocation offset
    #: (virtual start, size, device address) of each physically contiguous
    #: piece; empty means one piece, the whole chunk at dma_address.
    pieces: list[tuple[int, int, int]] = field(default_factory=list)
    #: where the chunk starts in ``fd`` (chunks may share one growing fd)
    fd_offset: int = 0

    def contains(self, address: int) -> bool:
        """True if ``address`` lies in this chunk."""
        return self.address <= address < self.address + self.size


class MemfdBackend:
    """Sparse shared memfd chunks; DMA addresses are virtual addresses.

    Every chunk is the next piece of one memfd, mapped right after the
    previous one in the reservation: to a peer, one region."""

    chunk_size = 1 << 30
    #: Packets may be placed anywhere: the region is contiguous for the device.
    boundary = 1 << 30

    def __init__(self) -> None:
        self.fd = -1
        self.fd_size = 0

    def new_chunk(self, size: int) -> Chunk:
        """Grows the memfd by at least ``size`` bytes and maps the new part."""
        size = -(-max(size, self.chunk_size) // 4096) * 4096
        if self.fd < 0:
            self.fd = os.memfd_create("snabbpy-dma", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, self.fd_size + size)
        address = reservation.map(self.fd, size, self.fd_size)
        chunk = Chunk(fd=self.fd, address=address, size=size, dma_address=address,
                      fd_offset=self.fd_size)
        self.fd_size += size
        return chunk


class DMAMemory:
    """Allocates DMA memory from chunks and translates its addresses."""

    def __init__(self, backend: MemfdBackend | None = None) -> None:
        self.backend = backend or MemfdBackend()
        self.chunks: list[Chunk] = []
        self._listeners: list[Callable[[Chunk], None]] = []

    def allocate(self, size: int, align: int = 64) -> int:
        """Returns the virtual address of ``size`` fresh bytes aligned to
        ``align``. Never freed: packets are recycled, rings live as long as
        their device."""
        if size <= 0 or align & (align - 1):
            raise ValueError(f"bad DMA allocation: size {size}, align {align}")
        for chunk in reversed(self.chunks[-1:]):
            start = -(-(chunk.address + chunk.used) // align) * align
            if start + size <= chunk.address + chunk.size:
                chunk.used = start + size - chunk.address
                return start
        chunk = self.backend.new_chunk(size + align)
        self._register(chunk)
        for listener in self._listeners:
            listener(chunk)
        return self.allocate(size, align)

    def _register(self, chunk: Chunk) -> None:
        pieces = chunk.pieces or [(chunk.address, chunk.size, chunk.dma_address)]
        for start, size, device in pieces:
            if lib.dma_map_add(start, size, device - start) < 0:
                raise MemoryError("DMA translation table is full")
        self.chunks.append(chunk)

    def dma_address(self, address: int) -> int:
        """Translates a virtual address in DMA memory to a device address."""
        translated = lib.dma_translate(address)
        if not translated:
            raise ValueError(f"address {address:#x} is not in DMA memory")
        return translated

    def chunk_of(self, address: int) -> Chunk:
        """The chunk holding ``address``; ValueError if none does."""
        for chunk in self.chunks:
            if chunk.contains(address):
                return chunk
        raise ValueError(f"address {address:#x} is not in DMA memory")

    def regions(self) -> list[Chunk]:
        """The chunks merged where one continues the previous (same fd,
        next file offset, next virtual and device address): what a
        vhost-user peer needs to map, as (fd, fd_offset, address, size,
        dma_address) in Chunk form."""
        merged: list[Chunk] = []
        for c in self.chunks:
            last = merged[-1] if merged else None
            if (last is not None and not c.pieces and not last.pieces and c.fd == last.fd
                    and c.fd_offset == last.fd_offset + last.size
                    and c.address == last.address + last.size
                    and c.dma_address == last.dma_address + last.size):
                merged[-1] = Chunk(fd=last.fd, address=last.address, size=last.size + c.size,
                                   dma_address=last.dma_address, fd_offset=last.fd_offset)
            else:
                merged.append(Chunk(fd=c.fd, address=c.address, size=c.size,
                                    dma_address=c.dma_address, fd_offset=c.fd_offset,
                                    pieces=list(c.pieces)))
        return merged

    def on_new_chunk(self, listener: Callable[[Chunk], None]) -> None:
        """Calls ``listener(chunk)`` for every chunk mapped from now on (a
        vhost-user frontend re-sends its memory table then)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Chunk], None]) -> None:
        """Stops calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)


#: The process's DMA memory, shared by packets and drivers.
dma = DMAMemory()


def set_backend(backend: MemfdBackend) -> None:
    """Switches the process to another kind of DMA memory (hugepages for
    PCI). Only before any DMA memory is in use: packets already carved from
    the old memory could not be reached by the new device."""
    if type(dma.backend) is type(backend):
        return
    if dma.chunks:
        raise RuntimeError(
            f"DMA memory is already in use as {type(dma.backend).__name__}; "
            f"{type(backend).__name__} must be chosen before any packet exists"
        )
    dma.backend = backend
