"""Hugepage DMA memory with physical addresses, for PCI devices in a VM.

A PCI device (an emulated virtio-net inside a QEMU guest) reaches memory by
guest-physical address. Each chunk here is a memfd of 2 MiB hugepages,
mapped shared and touched at once so every page is present; hugetlb pages
are neither swapped nor moved by the kernel's compaction, so the physical
address read from ``/proc/self/pagemap`` stays valid. A page is physically
contiguous, its neighbour need not be: packets are carved so that none
crosses a page (``boundary``), and the translation table gets one entry per
page.

Needs root (pagemap hides physical addresses from others) and reserved
hugepages: ``echo 512 > /proc/sys/vm/nr_hugepages``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from snabbpy.core.memory import Chunk, reservation
from snabbpy.core.native import ffi

HUGEPAGE_SIZE = 2 << 20
PAGEMAP_PRESENT = 1 << 63
PAGEMAP_PFN_MASK = (1 << 55) - 1


class HugepageError(RuntimeError):
    """Hugepage memory cannot be had: the message says what to do."""


def free_hugepages() -> int:
    """2 MiB hugepages reserved and not in use, from /proc/meminfo."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("HugePages_Free:"):
            return int(line.split()[1])
    return 0


def physical_address(virtual: int, pagemap_path: str = "/proc/self/pagemap") -> int:
    """The physical address of a present page of this process."""
    page = os.sysconf("SC_PAGE_SIZE")
    with open(pagemap_path, "rb") as f:
        f.seek(virtual // page * 8)
        (entry,) = struct.unpack("=Q", f.read(8))
    pfn = entry & PAGEMAP_PFN_MASK
    if not entry & PAGEMAP_PRESENT:
        raise HugepageError(f"page at {virtual:#x} is not present")
    if pfn == 0:
        raise HugepageError(
            "physical addresses are hidden from this process: run as root "
            "(CAP_SYS_ADMIN) to read them from /proc/self/pagemap"
        )
    return pfn * page + virtual % page


class HugepageBackend:
    """DMA memory in locked hugepages, translated to physical addresses."""

    chunk_size = 16 * HUGEPAGE_SIZE
    boundary = HUGEPAGE_SIZE

    def new_chunk(self, size: int) -> Chunk:
        """Maps at least ``size`` bytes of hugepages and finds where each
        page is physically."""
        size = -(-max(size, self.chunk_size) // HUGEPAGE_SIZE) * HUGEPAGE_SIZE
        try:
            fd = os.memfd_create("snabbpy-dma-huge", os.MFD_CLOEXEC | os.MFD_HUGETLB)
            os.ftruncate(fd, size)
            address = reservation.map(fd, size, 0, align=HUGEPAGE_SIZE)
        except OSError as exc:
            raise HugepageError(
                f"cannot map {size >> 20} MiB of hugepages ({exc.strerror}; "
                f"{free_hugepages()} free): reserve more as root with "
                f"'echo 512 > /proc/sys/vm/nr_hugepages'"
            ) from None
        touch = ffi.cast("uint8_t *", address)
        pieces = []
        for offset in range(0, size, HUGEPAGE_SIZE):
            touch[offset] = 0  # fault the page in: now it has a frame
            virtual = address + offset
            pieces.append((virtual, HUGEPAGE_SIZE, physical_address(virtual)))
        return Chunk(fd=fd, address=address, size=size,
                     dma_address=pieces[0][2], pieces=pieces)
