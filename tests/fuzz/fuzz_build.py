"""Builds the libFuzzer harnesses of tests/fuzz (the C rings, the pcap
record reader) with clang: ``python3 tests/fuzz/fuzz_build.py [OUTDIR]``.

Each harness is one C file that includes ``native_amalgam.c``: the native
core exactly as ``snabbpy/native_build.py`` feeds it to the C compiler
(same parts, same prelude, same rewrite of cffi's ``extern "Python"``), so
a harness follows the product's sources without a list of its own. The
binaries are built with ``-fsanitize=fuzzer,address,undefined``; any
sanitizer report aborts the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from snabbpy import native_build  # noqa: E402

#: The C harnesses: target name -> source in this directory.
TARGETS = {
    "device_ring": "fuzz_device_ring.c",
    "virtq": "fuzz_virtq.c",
    "packed_device": "fuzz_packed_device.c",
    "packed_driver": "fuzz_packed_driver.c",
    "pcap_read": "fuzz_pcap_read.c",
}

FLAGS = ["-g", "-O1", "-std=gnu11", "-fno-omit-frame-pointer",
         "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined",
         "-Wall", "-Wno-unused-function"]


def clang() -> str | None:
    """The clang to build with ($CLANG, else the first one on PATH)."""
    for name in (os.environ.get("CLANG"), "clang", "clang-16", "clang-15", "clang-14"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def amalgam() -> str:
    """The native core as one C translation unit (see the module docstring)."""
    out = [native_build.PRELUDE, "#include <stdio.h>\n#include <sys/mman.h>\n"]
    for header in native_build.headers():
        text = native_build._c_view_of_header(native_build._read(header))
        out.append(f"/* {header} */\n{text}")
    for source in native_build.sources():
        out.append(f"/* {source} */\n{native_build._read(source)}")
    return "\n".join(out)


def build(target: str, outdir: Path) -> Path:
    """Builds one harness into outdir (when its sources changed); returns the binary."""
    cc = clang()
    if cc is None:
        raise RuntimeError("clang not found: run scripts/install-fuzz.sh")
    outdir.mkdir(parents=True, exist_ok=True)
    am = outdir / "native_amalgam.c"
    text = amalgam()
    if not am.exists() or am.read_text() != text:
        am.write_text(text)
    src = HERE / TARGETS[target]
    binary = outdir / f"fuzz_{target}"
    inputs = [am, src, HERE / "fuzz_common.h", HERE / "fuzz_guest.h", Path(__file__)]
    if binary.exists() and all(p.stat().st_mtime <= binary.stat().st_mtime for p in inputs):
        return binary
    cmd = [cc, *FLAGS, "-I", str(outdir), "-I", str(HERE), str(src), "-o", str(binary)]
    subprocess.run(cmd, check=True)
    return binary


def main() -> None:
    """Builds every harness into argv[1] (default: build/fuzz)."""
    outdir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "fuzz"
    for target in TARGETS:
        print(build(target, outdir))


if __name__ == "__main__":
    main()
