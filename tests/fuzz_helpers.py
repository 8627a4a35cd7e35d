"""What the tests/test_fuzz_*.py tests share: run a fuzz target for a fixed
number of executions and fail with its report when it finds anything."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fuzz"))

import fuzz_run  # noqa: E402

#: Executions per target in the test suite, by speed: all targets together
#: take about a minute on two cores. SNABBPY_FUZZ_SCALE multiplies them;
#: docs/fuzzing.md says how to run longer.
RUNS = {"device_ring": 20000, "virtq": 20000, "packed_device": 20000, "packed_driver": 20000,
        "pcap_read": 20000, "pcap": 20000, "vhost_user": 4000}
SCALE = float(os.environ.get("SNABBPY_FUZZ_SCALE", "1"))


def fuzz(target: str) -> None:
    """Runs target over its corpus and ``runs`` new inputs; fails on a
    crash, sanitizer report, leak or broken invariant. Without the tools:
    fails under CI, skips elsewhere."""
    why = fuzz_run.missing(target)
    if why:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(why)
    runs = max(1, int(RUNS[target] * SCALE))
    proc = fuzz_run.run(target, runs)
    assert proc.returncode == 0, (
        f"fuzz target {target} found a problem (exit {proc.returncode}):\n"
        + proc.stderr[-6000:])
    # Corpus inputs count too: at least the asked-for new ones ran.
    assert fuzz_run.executed(proc) >= runs, proc.stderr[-2000:]
