"""The frontend's memory, mapped into this process from the fds of
SET_MEM_TABLE, and described to C as a ``struct dr_memory``.

Each region's fd is mapped shared from offset 0 up to ``mmap_offset +
memory_size`` (the region starts ``mmap_offset`` bytes in), so offsets
need not be page aligned. A region whose file is shorter than that is
refused: touching a page past the end of a file would kill the process
with SIGBUS, and the frontend chooses the fd.
"""

from __future__ import annotations

import mmap
import os
import stat
from collections.abc import Sequence

from snabbpy.core.native import ffi, lib
from snabbpy.lib.vhost_user import MemoryRegion


class GuestMemoryError(ValueError):
    """A memory table that cannot be mapped; the message says which region."""


class GuestMemory:
    """The regions of one SET_MEM_TABLE, mapped. ``c`` is the ``struct
    dr_memory *`` the device rings translate through. Immutable: a new
    table makes a new ``GuestMemory``; ``close()`` unmaps."""

    def __init__(self, regions: Sequence[MemoryRegion], fds: Sequence[int]) -> None:
        """Maps ``regions`` from ``fds`` (one each, in order). The fds stay
        the caller's to close. GuestMemoryError if any region is bad."""
        if len(regions) != len(fds):
            raise GuestMemoryError(f"{len(regions)} regions but {len(fds)} fds")
        self.c = ffi.new("struct dr_memory *")
        lib.dr_memory_clear(self.c)
        self.regions = tuple(regions)
        self._maps: list[tuple[mmap.mmap, object]] = []
        try:
            for i, (region, fd) in enumerate(zip(regions, fds, strict=True)):
                self._add(i, region, fd)
        except GuestMemoryError:
            self.close()
            raise

    def _add(self, i: int, region: MemoryRegion, fd: int) -> None:
        end = region.mmap_offset + region.memory_size
        try:
            st = os.fstat(fd)
        except OSError as e:
            raise GuestMemoryError(f"region {i}: bad fd: {e}") from None
        if not stat.S_ISREG(st.st_mode):
            raise GuestMemoryError(f"region {i}: fd is not a file that can be mapped")
        if st.st_size < end:
            raise GuestMemoryError(
                f"region {i}: file has {st.st_size} bytes, region needs {end} "
                f"(mmap_offset {region.mmap_offset} + memory_size {region.memory_size})")
        try:
            m = mmap.mmap(fd, end, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError, OverflowError) as e:
            raise GuestMemoryError(f"region {i}: mmap failed: {e}") from None
        buf = ffi.from_buffer(m)
        self._maps.append((m, buf))
        host = int(ffi.cast("uintptr_t", buf)) + region.mmap_offset
        if lib.dr_memory_add(self.c, region.guest_phys_addr, region.userspace_addr,
                             region.memory_size, host) != 0:
            raise GuestMemoryError(
                f"region {i} (guest {region.guest_phys_addr:#x}, user "
                f"{region.userspace_addr:#x}, size {region.memory_size:#x}) overlaps another")

    @property
    def size(self) -> int:
        """Total bytes mapped."""
        return sum(r.memory_size for r in self.regions)

    def close(self) -> None:
        """Unmaps every region. Rings using this memory must be stopped first."""
        lib.dr_memory_clear(self.c)
        for m, buf in self._maps:
            ffi.release(buf)
            m.close()
        self._maps.clear()

    def __repr__(self) -> str:
        return f"<GuestMemory {len(self.regions)} regions, {self.size >> 20} MiB>"
