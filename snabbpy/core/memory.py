"""DMA memory: where packets and virtqueue rings live.

Memory comes in *chunks*, each a memfd mapped shared into this process, so
that it can be handed to another process (a vhost-user peer) by file
descriptor. Chunks are large and sparse: the kernel backs pages only once
they are touched.

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

from snabbpy.core.native import ffi, lib


@dataclass
class Chunk:
    """One mapped region of DMA memory."""

    fd: int
    address: int          # virtual address of the first byte
    size: int
    mapping: mmap.mmap = field(repr=False)
    dma_address: int = 0  # what a device uses for the first byte
    used: int = 0         # bump-allocation offset
    #: (virtual start, size, device address) of each physically contiguous
    #: piece; empty means one piece, the whole chunk at dma_address.
    pieces: list[tuple[int, int, int]] = field(default_factory=list)

    def contains(self, address: int) -> bool:
        """True if ``address`` lies in this chunk."""
        return self.address <= address < self.address + self.size


class MemfdBackend:
    """Sparse shared memfd chunks; DMA addresses are virtual addresses."""

    chunk_size = 1 << 30
    #: Packets may be placed anywhere: the region is contiguous for the device.
    boundary = 1 << 30

    def new_chunk(self, size: int) -> Chunk:
        """Creates and maps a chunk of at least ``size`` bytes."""
        size = max(size, self.chunk_size)
        fd = os.memfd_create("snabbpy-dma", os.MFD_CLOEXEC)
        os.ftruncate(fd, size)
        mapping = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        address = int(ffi.cast("uintptr_t", ffi.from_buffer(mapping)))
        return Chunk(fd=fd, address=address, size=size, mapping=mapping, dma_address=address)


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
