"""A minimal virtio-net driver over plain memory, to exercise the device side.

``FakeMemory`` is "guest memory": regions of process memory, each given a
guest physical address and a (different) frontend user address, described
to C as a ``struct dr_memory``. ``FakeQueue`` is a split virtqueue a test
drives by hand: it writes descriptors and avail entries (good or hostile)
and reads back the used ring. Used by the device-ring tests and by
``snabbpy selftest apps.vhost``; no socket, no DPDK, no VM.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass

from snabbpy.core.native import ffi, lib
from snabbpy.lib.virtio.constants import DescFlag

#: Where the fake frontend sees its memory: user address = guest phys + this.
USER_OFFSET = 0x7F00_0000_0000
_DESC = struct.Struct("<QIHH")


@dataclass
class Region:
    """One region of fake guest memory (host bytes kept alive by ``buf``)."""

    guest_phys: int
    size: int
    host: int
    buf: object


class FakeMemory:
    """Guest memory made of regions at chosen guest physical addresses.

    ``regions`` is a list of (guest_phys, size); ``c`` is the filled
    ``struct dr_memory *``. ``alloc`` hands out guest addresses, bump style,
    from the first region onwards. ``shared`` puts each region in a memfd
    (``fds``), so it can be handed to a vhost-user backend."""

    def __init__(self, regions: list[tuple[int, int]], shared: bool = False) -> None:
        self.c = ffi.new("struct dr_memory *")
        lib.dr_memory_clear(self.c)
        self.regions: list[Region] = []
        self.fds: list[int] = []
        self._mappings: list[tuple[mmap.mmap, object]] = []
        for gpa, size in regions:
            buf = self._shared(size) if shared else ffi.new("uint8_t[]", size)
            host = int(ffi.cast("uintptr_t", buf))
            if lib.dr_memory_add(self.c, gpa, gpa + USER_OFFSET, size, host) != 0:
                raise ValueError(f"region {gpa:#x}+{size:#x} refused")
            self.regions.append(Region(gpa, size, host, buf))
        self._next = regions[0][0]

    def _shared(self, size: int):
        fd = os.memfd_create("fake-guest", os.MFD_CLOEXEC)
        os.ftruncate(fd, size)
        self.fds.append(fd)
        mapping = mmap.mmap(fd, size)
        buf = ffi.from_buffer(mapping)
        self._mappings.append((mapping, buf))
        return buf

    def close(self) -> None:
        """Closes the memfds and unmaps shared memory (a mmap object holds
        its own duplicate of the fd until closed). Use no address of this
        memory afterwards."""
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()
        for mapping, buf in self._mappings:
            ffi.release(buf)
            mapping.close()
        self._mappings.clear()

    def alloc(self, size: int, align: int = 16) -> int:
        """Guest physical address of ``size`` fresh bytes in one region."""
        for r in self.regions:
            at = max(self._next, r.guest_phys)
            at = -(-at // align) * align
            if at + size <= r.guest_phys + r.size:
                self._next = at + size
                return at
        raise MemoryError(f"fake guest memory full ({size} bytes wanted)")

    def _host(self, gpa: int, n: int) -> int:
        for r in self.regions:
            if r.guest_phys <= gpa and gpa + n <= r.guest_phys + r.size:
                return r.host + gpa - r.guest_phys
        raise ValueError(f"fake guest address {gpa:#x}+{n} is not in one region")

    def write(self, gpa: int, data: bytes) -> None:
        """Stores ``data`` at guest address ``gpa``."""
        ffi.memmove(ffi.cast("uint8_t *", self._host(gpa, len(data))), data, len(data))

    def read(self, gpa: int, n: int) -> bytes:
        """The ``n`` bytes at guest address ``gpa``."""
        return ffi.buffer(ffi.cast("uint8_t *", self._host(gpa, n)), n)[:]


class FakeQueue:
    """The driver's view of one split virtqueue of ``size`` entries.

    ``start(q, stats, flags)`` starts the device side ``q`` on it. Chains
    are lists of (guest address, length, flags) descriptors; ``add_chain``
    writes them from descriptor ``at`` on and makes the head available."""

    def __init__(self, mem: FakeMemory, size: int, event_idx: bool = False) -> None:
        self.mem, self.size = mem, size
        extra = 2 if event_idx else 0
        self.desc = mem.alloc(16 * size, 16)
        self.avail = mem.alloc(4 + 2 * size + extra, 2)
        self.used = mem.alloc(4 + 8 * size + extra, 4)
        self.avail_idx = 0
        self.used_seen = 0
        self.next_desc = 0

    def start(self, q, stats, flags: int = 0, last_avail: int = 0) -> int:
        """Starts the device queue ``q`` on this ring; dr_queue_start's result."""
        return lib.dr_queue_start(q, self.mem.c, stats, self.size, self.desc + USER_OFFSET,
                                  self.avail + USER_OFFSET, self.used + USER_OFFSET,
                                  last_avail, flags)

    def write_desc(self, i: int, addr: int, length: int, flags: int, nxt: int) -> None:
        """Writes descriptor ``i`` (no checks: tests write hostile ones)."""
        self.mem.write(self.desc + 16 * i, _DESC.pack(addr, length, flags, nxt))

    def add_chain(self, chain: list[tuple[int, int, int]]) -> int:
        """Writes ``chain`` to consecutive descriptors (linked by NEXT) and
        makes its head available; returns the head."""
        head = self.next_desc
        for k, (addr, length, flags) in enumerate(chain):
            i = (head + k) % self.size
            last = k == len(chain) - 1
            link = 0 if last else DescFlag.NEXT
            self.write_desc(i, addr, length, flags | link, (i + 1) % self.size)
        self.next_desc = (head + len(chain)) % self.size
        self.make_available(head)
        return head

    def make_available(self, head: int) -> None:
        """Puts ``head`` in the next avail slot and publishes the new idx."""
        self.mem.write(self.avail + 4 + 2 * (self.avail_idx % self.size), struct.pack("<H", head))
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self.set_avail_idx(self.avail_idx)

    def set_avail_idx(self, idx: int) -> None:
        """Writes avail->idx (tests may write a bogus one)."""
        self.mem.write(self.avail + 2, struct.pack("<H", idx))

    def set_avail_flags(self, flags: int) -> None:
        """Writes avail->flags (VRING_AVAIL_F_NO_INTERRUPT)."""
        self.mem.write(self.avail, struct.pack("<H", flags))

    def set_used_event(self, idx: int) -> None:
        """Writes used_event (RING_EVENT_IDX)."""
        self.mem.write(self.avail + 4 + 2 * self.size, struct.pack("<H", idx))

    def used_idx(self) -> int:
        """used->idx as the device last published it."""
        return struct.unpack("<H", self.mem.read(self.used + 2, 2))[0]

    def take_used(self) -> list[tuple[int, int]]:
        """The (id, len) used entries published since the last call."""
        out = []
        idx = self.used_idx()
        while self.used_seen != idx:
            at = self.used + 4 + 8 * (self.used_seen % self.size)
            out.append(struct.unpack("<II", self.mem.read(at, 8)))
            self.used_seen = (self.used_seen + 1) & 0xFFFF
        return out

    def post_tx(self, frame: bytes, hdr_len: int = 12, split_header: bool = False,
                header: bytes | None = None) -> int:
        """Makes one packet available to transmit: a header (zero, or
        ``header`` of ``hdr_len`` bytes) then ``frame``, in one buffer or
        (``split_header``) two."""
        header = bytes(hdr_len) if header is None else header
        if len(header) != hdr_len:
            raise ValueError(f"header of {len(header)} bytes, not {hdr_len}")
        buf = self.mem.alloc(hdr_len + len(frame))
        self.mem.write(buf, header + frame)
        if split_header:
            return self.add_chain([(buf, hdr_len, 0), (buf + hdr_len, len(frame), 0)])
        return self.add_chain([(buf, hdr_len + len(frame), 0)])

    def post_rx(self, size: int, pieces: int = 1) -> tuple[int, int]:
        """Makes one receive buffer of ``size`` bytes available, as a chain
        of ``pieces`` descriptors; returns (head, guest address)."""
        buf = self.mem.alloc(size)
        step = -(-size // pieces)
        chain = [(buf + o, min(step, size - o), DescFlag.WRITE) for o in range(0, size, step)]
        return self.add_chain(chain), buf
