"""Coverage-guided fuzzing of vguest's driver ring (lib/virtio/virtq.c)
against a device writing anything into the used ring:
tests/fuzz/fuzz_virtq.c."""

from __future__ import annotations

from fuzz_helpers import fuzz


def test_fuzz_virtq():
    fuzz("virtq")
