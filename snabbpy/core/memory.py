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
import resource
from collections.abc import Callable
from dataclasses import dataclass, field

from snabbpy.core.config import ConfigError
from snabbpy.core.native import lib

#: Bytes of virtual address space reserved for DMA memory (never backed
#: until mapped): more than the packet freelist can ever hold.
RESERVATION_SIZE = 256 << 30
#: The reservation starts on this boundary (a hugepage chunk needs 2 MiB).
RESERVATION_ALIGN = 1 << 30
#: Under a process memory limit: the boundary, what Python may still need
#: besides the reservation (its heap, numpy, thread stacks) and the least
#: packet memory worth running with (about 25,000 packets).
LIMITED_ALIGN = 2 << 20
PYTHON_HEADROOM = 512 << 20
MIN_RESERVATION = 256 << 20


class MemoryLimitError(ConfigError):
    """The process memory limit (RLIMIT_AS, ``ulimit -v``) leaves too
    little address space for packet memory: the message says how much."""


def address_space_limit() -> int | None:
    """The process's address-space limit in bytes (None: unlimited)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


def address_space_used() -> int:
    """Bytes of address space this process has mapped now (VmSize)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) << 10
    return 0


def fitted_size(limit: int | None, used: int) -> int:
    """How much to reserve: RESERVATION_SIZE, or under a limit what it
    leaves beside ``used`` and Python's headroom. Address space reserved
    counts against the limit although it costs no memory, so a limit of a
    few GiB would refuse the 256 GiB that an unlimited process takes; with
    less, packet memory simply runs out sooner (and says so). Raises
    MemoryLimitError, saying what is needed, when not even
    MIN_RESERVATION fits."""
    if limit is None:
        return RESERVATION_SIZE
    room = limit - used - PYTHON_HEADROOM - LIMITED_ALIGN
    if room < MIN_RESERVATION:
        need = used + PYTHON_HEADROOM + LIMITED_ALIGN + MIN_RESERVATION
        raise MemoryLimitError(
            f"the process memory limit (ulimit -v) of {limit >> 20:,} MiB is too small: "
            f"snabbpy needs at least {-(-need >> 20):,} MiB of address space "
            f"({MIN_RESERVATION >> 20} MiB of it for packet memory; "
            f"try ulimit -v {-(-need >> 20) * 1024} or unlimited)")
    return min(RESERVATION_SIZE, room // LIMITED_ALIGN * LIMITED_ALIGN)


class Reservation:
    """The one range of virtual addresses that all DMA memory is mapped
    into, in order, without gaps between chunks of the same backend. Its
    size fits the process memory limit, if there is one (``fitted_size``)."""

    def __init__(self, size: int | None = None) -> None:
        limit = address_space_limit()
        size = fitted_size(limit, address_space_used()) if size is None else size
        self.limited = limit is not None and size < RESERVATION_SIZE
        align = LIMITED_ALIGN if self.limited else RESERVATION_ALIGN
        raw = lib.dma_reserve(size + align)
        if not raw:
            raise MemoryLimitError(f"cannot reserve {size >> 20:,} MiB of address space for "
                                   f"packet memory (see ulimit -v)")
        self.base = -(-raw // align) * align
        self.size = size
        self.used = 0

    def left(self) -> int:
        """Bytes not mapped yet."""
        return self.size - self.used

    def map(self, fd: int, size: int, fd_offset: int = 0, align: int = 4096) -> int:
        """Maps ``size`` bytes of ``fd`` (from ``fd_offset``) at the next free
        address aligned to ``align``; returns that address."""
        start = -(-(self.base + self.used) // align) * align
        if start + size > self.base + self.size:
            raise MemoryError(
                f"DMA memory reservation of {self.size >> 20:,} MiB is exhausted "
                f"(asked for {size >> 20} MiB more)"
            )
        error = lib.dma_map_fixed(start, size, fd, fd_offset)
        if error:
            raise OSError(error, f"cannot map DMA memory: {os.strerror(error)}")
        self.used = start + size - self.base
        return start


#: The process's reservation: ``packet.memory()`` is an array over it.
reservation = Reservation()


def limit_hint() -> str:
    """For the line that says packet memory ran out: that the process
    memory limit made it smaller than usual, when it did."""
    if not reservation.limited:
        return ""
    return (f" (packet memory was fitted to the process memory limit, ulimit -v: "
            f"{reservation.size >> 20:,} MiB)")


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
        # A whole chunk, or what the reservation has left when that is less.
        size = -(-max(size, min(self.chunk_size, reservation.left())) // 4096) * 4096
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
