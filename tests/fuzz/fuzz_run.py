"""Runs one fuzz target for a fixed number of executions, for the tests
(tests/test_fuzz_*.py) and by hand; see docs/fuzzing.md.

``python3 tests/fuzz/fuzz_run.py TARGET [RUNS]`` runs a target over its corpus
(tests/fuzz/corpus/TARGET) and then that many new inputs; it exits non-zero
with the report on a crash, a sanitizer report, a leak or a broken
invariant. New inputs go to a scratch directory, never into the corpus.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import fuzz_build as build  # noqa: E402

#: Python targets (atheris): name -> harness.
PYTHON_TARGETS = {"vhost_user": "fuzz_vhost_user.py", "pcap": "fuzz_pcap.py"}
TARGETS = (*build.TARGETS, *PYTHON_TARGETS)


def missing(target: str) -> str:
    """Why target cannot run here ("" when it can)."""
    if target in build.TARGETS:
        return "" if build.clang() else "clang (libFuzzer) missing: run scripts/install-fuzz.sh"
    try:
        import atheris  # noqa: F401
    except ImportError:
        return "atheris not installed: pip install -e '.[test]' (or scripts/install-fuzz.sh)"
    return ""


def executed(proc: subprocess.CompletedProcess) -> int:
    """Inputs the run executed, from libFuzzer's final stats (0 if absent)."""
    for line in proc.stderr.splitlines():
        if line.startswith("stat::number_of_executed_units:"):
            return int(line.split(":")[-1])
    return 0


def corpus(target: str) -> Path:
    """The seed corpus of target, kept in the repository."""
    return HERE / "corpus" / target


def command(target: str, outdir: Path) -> list[str]:
    """The command that runs target (building a C harness first)."""
    if target in build.TARGETS:
        return [str(build.build(target, ROOT / "build" / "fuzz"))]
    return [sys.executable, str(HERE / PYTHON_TARGETS[target])]


def run(target: str, runs: int, seed: int = 1, max_len: int = 4096,
        timeout: float = 300.0) -> subprocess.CompletedProcess:
    """Runs target over its corpus then for ``runs`` executions; returns
    the finished process (returncode 0: nothing found)."""
    scratch = Path(tempfile.mkdtemp(prefix=f"fuzz-{target}-"))
    try:
        cmd = [*command(target, scratch), f"-runs={runs}", f"-seed={seed}",
               f"-max_len={max_len}", f"-artifact_prefix={scratch}/", "-print_final_stats=1",
               str(scratch / "new"), str(corpus(target))]
        (scratch / "new").mkdir()
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:symbolize=1")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=ROOT)
        crashes = sorted(p.name for p in scratch.iterdir() if p.name.startswith(
            ("crash-", "leak-", "timeout-", "oom-")))
        if crashes and proc.returncode == 0:
            proc.returncode = 1
        if crashes:  # kept for reproduction: run the target on the file
            keep = ROOT / "build" / "fuzz" / "artifacts" / target
            keep.mkdir(parents=True, exist_ok=True)
            for c in crashes:
                shutil.copy(scratch / c, keep / c)
                proc.stderr += f"\nartifact kept: {keep / c}"
        return proc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    """Command line: TARGET [RUNS]."""
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: fuzz_run.py TARGET [RUNS]; targets: {', '.join(TARGETS)}")
    proc = run(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100000)
    sys.stderr.write(proc.stderr[-20000:])
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
