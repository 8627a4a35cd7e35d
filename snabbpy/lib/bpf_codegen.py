"""Classic BPF translated to C, compiled once and cached.

``translate(insns)`` turns a validated program into one C function,
``uint32_t snabbpy_bpf_match(const uint8_t *p, uint32_t len)``, with the
interpreter's exact semantics (every packet load bounds-checked: past the
end rejects; division by a zero X rejects); each instruction becomes a
label and a statement, so the C compiler keeps A and X in registers and
folds the constants. ``load(insns)`` compiles it with the system's C
compiler into a shared object in the cache directory
(``$SNABBPY_CACHE_DIR`` or ``~/.cache/snabbpy``, under ``bpf/``), named by
the hash of its source, and returns the function's address; a later load
of the same program reuses the file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

import cffi

CFLAGS = ["-O2", "-fPIC", "-shared", "-std=gnu11", "-w"]
FUNCTION = "snabbpy_bpf_match"
_PRELUDE = """#include <stdint.h>
static inline uint32_t ld32(const uint8_t *p)
{ return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }
static inline uint32_t ld16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }
"""
_ALU = {0x00: "+", 0x10: "-", 0x20: "*", 0x30: "/", 0x40: "|", 0x50: "&", 0x90: "%", 0xA0: "^"}
_JUMP = {0x10: "==", 0x20: ">", 0x30: ">="}
_SIZE = {0x00: (4, "ld32(P + {at})"), 0x08: (2, "ld16(P + {at})"), 0x10: (1, "P[{at}]")}
_ffi = cffi.FFI()
_ffi.cdef(f"uint32_t {FUNCTION}(const uint8_t *p, uint32_t len);")
_loaded: dict[str, object] = {}  # path -> library, kept open for the process


class CodegenError(RuntimeError):
    """The C compiler is missing or failed; the message says which."""


def _statement(pc: int, code: int, jt: int, jf: int, k: int) -> str:
    cls, size, mode = code & 0x07, code & 0x18, code & 0xE0
    if cls == 0x00 and mode in (0x20, 0x40):  # ld [k] / ld [x + k]
        width, load = _SIZE[size]
        at = f"{k}ULL" if mode == 0x20 else f"((uint64_t)X + {k}ULL)"
        return f"if ({at} + {width} > len) return 0; A = {load.format(at=at)};"
    if code == 0xB1:
        return f"if ({k}ULL >= len) return 0; X = (P[{k}] & 0xf) << 2;"
    simple = {0x00: f"A = {k}u;", 0x60: f"A = M[{k}];", 0x80: "A = len;",
              0x01: f"X = {k}u;", 0x61: f"X = M[{k}];", 0x81: "X = len;",
              0x02: f"M[{k}] = A;", 0x03: f"M[{k}] = X;", 0x06: f"return {k}u;",
              0x16: "return A;", 0x07: "X = A;", 0x87: "A = X;", 0x84: "A = -A;",
              0x05: f"goto L{pc + 1 + k};",
              0x64: f"A <<= {k};", 0x74: f"A >>= {k};",
              0x6C: "A = X < 32 ? A << X : 0;", 0x7C: "A = X < 32 ? A >> X : 0;"}
    if code in simple:
        return simple[code]
    op = code & 0xF0
    src = "X" if code & 0x08 else f"{k}u"
    if cls == 0x04 and op in _ALU:
        guard = "if (!X) return 0; " if src == "X" and op in (0x30, 0x90) else ""
        return f"{guard}A {_ALU[op]}= {src};"
    if cls == 0x05:
        test = f"(A & {src})" if op == 0x40 else f"(A {_JUMP[op]} {src})"
        return f"if {test} goto L{pc + 1 + jt}; goto L{pc + 1 + jf};"
    raise ValueError(f"opcode {code:#x} has no translation")  # validate() refuses it first


def translate(insns) -> str:
    """The C source of a validated program (a sequence of ``Insn``)."""
    body = [f"L{pc}: {_statement(pc, i.code, i.jt, i.jf, i.k)}" for pc, i in enumerate(insns)]
    return (_PRELUDE + f"uint32_t {FUNCTION}(const uint8_t *P, uint32_t len)\n{{\n"
            "    uint32_t A = 0, X = 0, M[16] = {0};\n    (void)A; (void)X; (void)M;\n    "
            + "\n    ".join(body) + "\n}\n")


def cache_dir() -> Path:
    """Where compiled programs are kept."""
    root = os.environ.get("SNABBPY_CACHE_DIR") or Path.home() / ".cache" / "snabbpy"
    return Path(root) / "bpf"


def compiler() -> str:
    """The C compiler to use: ``$CC``, Python's own, or ``cc``."""
    for cc in (os.environ.get("CC"), (sysconfig.get_config_var("CC") or "").split(" ")[0], "cc"):
        if cc and shutil.which(cc):
            return cc
    raise CodegenError("no C compiler found (install gcc, or set CC)")


def load(insns) -> int:
    """Compiles (or finds in the cache) a validated program; returns the
    address of its match function."""
    source = translate(insns)
    cc = compiler()
    key = hashlib.sha256("\0".join([source, cc, *CFLAGS]).encode()).hexdigest()[:32]
    path = cache_dir() / f"bpf-{key}.so"
    if str(path) not in _loaded:
        try:
            if not path.exists():
                _build(cc, source, path)
            _loaded[str(path)] = _ffi.dlopen(str(path))
        except (OSError, subprocess.SubprocessError) as exc:
            raise CodegenError(f"cannot build or load {path}: {exc}") from None
    function = getattr(_loaded[str(path)], FUNCTION)
    return int(_ffi.cast("uintptr_t", function))


def _build(cc: str, source: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        src, out = Path(tmp, "prog.c"), Path(tmp, "prog.so")
        src.write_text(source)
        r = subprocess.run([cc, *CFLAGS, "-o", str(out), str(src)],
                           capture_output=True, text=True, timeout=120)
        if r.returncode:
            raise CodegenError(f"{cc} failed on a BPF program: {r.stderr.strip()[:300]}")
        os.replace(out, path)  # atomic: concurrent loaders see all or nothing
