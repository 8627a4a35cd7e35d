"""A process memory limit (RLIMIT_AS, ``ulimit -v``): packet memory's
reservation of address space is fitted to it; too small a limit is one
line saying how much is needed (exit 2); packet memory that runs out under
it says so once, naming the limit."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest
from helpers import LEAKY_APP, SNABBPY

from snabbpy.core import memory

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
MiB = 1 << 20


def limited(mib: int):
    """A preexec_fn that limits the child's address space to ``mib`` MiB."""
    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mib * MiB, mib * MiB))
    return set_limit


def snabbpy_run(tmp_path: Path, mib: int, graph: str, *args: str):
    return subprocess.run([*SNABBPY, "run", graph, "--report-interval", "0", *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          preexec_fn=limited(mib),
                          env={**os.environ, "SNABBPY_SHM": str(tmp_path / "shm")})


def test_without_a_limit_the_whole_reservation_is_taken():
    assert memory.fitted_size(None, 200 * MiB) == memory.RESERVATION_SIZE


def test_under_a_limit_the_reservation_fits_beside_python():
    size = memory.fitted_size(4096 * MiB, 200 * MiB)
    assert size == 4096 * MiB - 200 * MiB - memory.PYTHON_HEADROOM - memory.LIMITED_ALIGN
    assert size % memory.LIMITED_ALIGN == 0


def test_too_small_a_limit_says_how_much_is_needed():
    with pytest.raises(memory.MemoryLimitError) as e:
        memory.fitted_size(500 * MiB, 200 * MiB)
    need = 200 + memory.PYTHON_HEADROOM // MiB + 2 + memory.MIN_RESERVATION // MiB
    assert str(e.value).startswith("the process memory limit (ulimit -v) of 500 MiB is too small")
    assert f"needs at least {need:,} MiB" in str(e.value)
    assert f"ulimit -v {need * 1024}" in str(e.value)


def test_a_run_under_too_small_a_limit_is_one_line_and_exit_2(tmp_path):
    proc = snabbpy_run(tmp_path, 300, str(CONFIGS / "basic1.yaml"), "--duration", "0.1")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("snabbpy: error: the process memory limit (ulimit -v) of 300 MiB")
    assert "needs at least" in proc.stderr and proc.stdout == ""


def test_a_run_under_a_limit_that_fits_runs(tmp_path):
    proc = snabbpy_run(tmp_path, 1536, str(CONFIGS / "basic1.yaml"), "--duration", "0.2")
    assert proc.returncode == 0, proc.stderr
    assert "sent on tee.out1 -> sink.in1" in proc.stdout


def test_packet_memory_running_out_under_a_limit_names_the_limit(tmp_path):
    (tmp_path / "leak.py").write_text(LEAKY_APP)
    (tmp_path / "g.yaml").write_text(
        "apps:\n  source: {class: basic.Source}\n  leak: {class: 'leak:Leaky'}\n"
        "links:\n  - source.output -> leak.input\n")
    proc = snabbpy_run(tmp_path, 1024, "g.yaml", "--duration", "3")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    exhausted = [line for line in lines if "packet memory exhausted" in line]
    assert len(exhausted) == 1, proc.stderr  # said once, however often refused
    assert "app 'leak' holds the most" in exhausted[0]
    assert "fitted to the process memory limit, ulimit -v" in exhausted[0]
    lost = [line for line in lines if "never sent on or freed" in line]
    assert len(lost) == 1 and lost[0].startswith("snabbpy: warning: app 'leak' received ")
