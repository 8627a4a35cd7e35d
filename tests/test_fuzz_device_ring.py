"""Coverage-guided fuzzing of the device ring (lib/virtio/device_ring.c):
tests/fuzz/fuzz_device_ring.c, both directions, indirect tables, loops,
guest memory between guard pages. And the bug it found, as a unit test."""

from __future__ import annotations

from fuzz_helpers import fuzz

from snabbpy.core.native import ffi, lib


def test_fuzz_device_ring():
    fuzz("device_ring")


def test_regions_ending_at_the_top_of_the_address_space_cannot_overlap():
    # Found by the fuzzer: the overlap check compared ends, and the end of a
    # region ending at 2**64 wraps to 0, so a second region on the same
    # bytes was accepted and a translation became ambiguous.
    m = ffi.new("struct dr_memory *")
    lib.dr_memory_clear(m)
    top = 2**64 - 1
    assert lib.dr_memory_add(m, 0x1000, top, 1, 0x5000) == 0
    assert lib.dr_memory_add(m, 0x9000, top, 1, 0x6000) == lib.DR_E_REGION
    assert lib.dr_memory_add(m, top, 0x1000, 1, 0x6000) == 0
    assert lib.dr_memory_add(m, top, 0x9000, 1, 0x7000) == lib.DR_E_REGION
    assert lib.dr_memory_add(m, 2**64 - 16, 0xA000, 16, 0x7000) == lib.DR_E_REGION
    assert m.nregions == 2
