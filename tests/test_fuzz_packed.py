"""Coverage-guided fuzzing of both ends of the packed virtqueue:
tests/fuzz/fuzz_packed_device.c (the device ring VhostUser runs, against
a guest writing anything into its ring, guard pages around its memory) and
tests/fuzz/fuzz_packed_driver.c (vguest's driver ring, against a device
writing anything into the used descriptors and buffers)."""

from __future__ import annotations

from fuzz_helpers import fuzz


def test_fuzz_packed_device():
    fuzz("packed_device")


def test_fuzz_packed_driver():
    fuzz("packed_driver")
