"""The directory where runs publish counters (/run/snabbpy, or
$SNABBPY_SHM) read-only or full: one line naming it, exit 2, no traceback.
Both are real file systems here: a tmpfs mounted read-only, and one so
small that it is full (root mounts them; under CI, not being root fails)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import SNABBPY, need_root

GRAPH = Path(__file__).resolve().parent.parent / "configs" / "basic1.yaml"


@pytest.fixture
def tmpfs(tmp_path):
    """Mounts a tmpfs with the given options on a new directory; unmounts it after."""
    need_root("mount", "umount")
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=True)


def run_publishing_into(shm: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*SNABBPY, "run", str(GRAPH), "--duration", "0.1",
                           "--report-interval", "0"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "SNABBPY_SHM": str(shm)})


def assert_one_line(proc: subprocess.CompletedProcess, shm: Path, why: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (f"snabbpy: error: cannot publish counters in {shm}: {why} "
                           "(set SNABBPY_SHM to a writable directory)\n")


def test_a_read_only_counter_directory_is_one_line(tmpfs):
    shm = tmpfs("ro", "ro,size=64k")
    assert_one_line(run_publishing_into(shm), shm, "Read-only file system")


@pytest.mark.parametrize("room", [0, 4096])  # nothing left; less than the counter files need
def test_a_full_counter_directory_is_one_line(tmpfs, room):
    shm = tmpfs("full", "size=64k")
    with open(shm / "filler", "wb") as f:
        f.write(bytes(64 * 1024 - room))
    assert_one_line(run_publishing_into(shm), shm, "No space left on device")
    assert os.listdir(shm) == ["filler"]  # nothing half-made left behind
