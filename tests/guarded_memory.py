"""Guest memory for hostile-ring tests: two regions, adjacent in guest
physical space but apart in ours, each between PROT_NONE guard pages, so
one byte read or written outside the memory table kills the test; and
hypothesis strategies for the addresses and lengths a hostile guest gives."""

from __future__ import annotations

import ctypes
import mmap

from hypothesis import strategies as st

from snabbpy.core.native import ffi, lib

PAGE = mmap.PAGESIZE
REGION = 0x10000
GPA = (0x100000, 0x100000 + REGION)  # adjacent for the guest, apart for us

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


class GuardedMemory:
    """Two guest regions, each with an inaccessible page on both sides;
    ``c`` is their ``struct dr_memory *`` (guest = user addresses)."""

    def __init__(self):
        total = 3 * PAGE + 2 * REGION
        self.map = mmap.mmap(-1, total)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self.map))
        self.host = (base + PAGE, base + 2 * PAGE + REGION)
        for guard in (base, base + PAGE + REGION, base + 2 * PAGE + 2 * REGION):
            assert _libc.mprotect(guard, PAGE, 0) == 0
        self.c = ffi.new("struct dr_memory *")
        lib.dr_memory_clear(self.c)
        for gpa, host in zip(GPA, self.host, strict=True):
            assert lib.dr_memory_add(self.c, gpa, gpa, REGION, host) == 0

    def write(self, gpa, data):
        """Writes guest bytes at guest physical address ``gpa``."""
        k = 0 if gpa < GPA[1] else 1
        ffi.memmove(ffi.cast("uint8_t *", self.host[k] + gpa - GPA[k]), data, len(data))

    def read(self, gpa, n):
        """Reads ``n`` guest bytes at ``gpa`` (inside one region)."""
        k = 0 if gpa < GPA[1] else 1
        return bytes(ffi.buffer(ffi.cast("uint8_t *", self.host[k] + gpa - GPA[k]), n))


# Addresses near every edge of the regions, and far away.
EDGES = [GPA[0] - 16, GPA[0], GPA[0] + 0x3000, GPA[1] - 100, GPA[1] - 12, GPA[1],
         GPA[1] + REGION - 64, GPA[1] + REGION - 1, GPA[1] + REGION, 0, 2**64 - 8]
addresses = st.one_of(st.sampled_from(EDGES), st.integers(GPA[0], GPA[1] + REGION),
                      st.integers(0, 2**64 - 1))
lengths = st.one_of(st.sampled_from([0, 1, 10, 12, 16, 32, 60, 1500, 9000, 10252, 70000]),
                    st.integers(0, 2**32 - 1))
