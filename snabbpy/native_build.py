"""Builds snabbpy's native core with cffi: packets, links and the batch
operations of apps, compiled into one extension, ``snabbpy._native``.

Each package with C code declares its own parts in its ``__init__.py``:
``C_PARTS = [(header, source), ...]``, relative to the package, either may
be None, in the order C must see them. A header is fed to ``ffi.cdef`` and
included by the C code. This file collects them (reading the list from the
source, never importing the package, which needs the extension built)
into ``PARTS``: core first, then lib, then apps. Run this file to build the
extension in place during development: ``python snabbpy/native_build.py``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import cffi

HERE = Path(__file__).resolve().parent

#: Layers in the order their C is compiled (a layer uses only those before it).
LAYERS = ("core", "lib", "apps")


def declared_parts(init: Path) -> list[tuple[str | None, str | None]]:
    """The ``C_PARTS`` literal of one package's ``__init__.py`` ([] if none)."""
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "C_PARTS" for t in node.targets):
            return ast.literal_eval(node.value)
    return []


def _layer_order(init: Path) -> tuple[int, str]:
    package = init.parent.relative_to(HERE)
    top = package.parts[0] if package.parts else ""
    return (LAYERS.index(top) if top in LAYERS else len(LAYERS), str(package))


def collect_parts() -> list[tuple[str | None, str | None]]:
    """Every package's C parts, paths relative to the snabbpy package."""
    parts = []
    for init in sorted(HERE.rglob("__init__.py"), key=_layer_order):
        package = init.parent.relative_to(HERE)
        for header, source in declared_parts(init):
            parts.append(tuple(str(package / f) if f else None for f in (header, source)))
    return parts


#: (header or None, source or None), relative to the snabbpy package, in the
#: order the C compiler must see them.
PARTS: list[tuple[str | None, str | None]] = collect_parts()

PRELUDE = """
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
"""

_EXTERN_PYTHON = re.compile(r'^extern "Python" (.*)$', re.MULTILINE)


def _read(rel: str) -> str:
    return (HERE / rel).read_text()


def _c_view_of_header(text: str) -> str:
    # cffi generates the bodies of extern "Python" functions as statics
    # placed after our source, so C sees a forward declaration instead.
    return _EXTERN_PYTHON.sub(r"static \1", text)


def headers() -> list[str]:
    """The headers of ``PARTS``, in order."""
    return [h for h, _ in PARTS if h]


def sources() -> list[str]:
    """The C sources of ``PARTS``, in order."""
    return [s for _, s in PARTS if s]


def make_builder() -> cffi.FFI:
    """Returns the cffi builder for ``snabbpy._native``."""
    ffibuilder = cffi.FFI()
    cdefs, csource = [], [PRELUDE]
    for header in headers():
        text = _read(header)
        cdefs.append(text)
        csource.append(f"/* {header} */\n" + _c_view_of_header(text))
    for source in sources():
        csource.append(f"/* {source} */\n" + _read(source))
    ffibuilder.cdef("\n".join(cdefs))
    ffibuilder.set_source(
        "snabbpy._native",
        "\n".join(csource),
        extra_compile_args=["-O3", "-std=gnu11", "-Wall", "-Wno-unused-function",
                            "-fno-semantic-interposition"],
    )
    return ffibuilder


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE.parent), verbose=False)
