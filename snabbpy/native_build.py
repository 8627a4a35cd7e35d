"""Builds snabbpy's native core with cffi: packets, links and the batch
operations of apps, compiled into one extension, ``snabbpy._native``.

Each part is a header (declarations fed to ``ffi.cdef`` and included by the
C code) and an optional C source, listed in ``PARTS`` in dependency order.
Run this file to build the extension in place during development:
``python snabbpy/native_build.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import cffi

HERE = Path(__file__).resolve().parent

# (header, source or None), relative to the snabbpy package, in the order
# the C compiler must see them.
PARTS: list[tuple[str, str | None]] = [
    ("core/dma.h", "core/dma.c"),
    ("core/packet.h", "core/packet.c"),
    ("core/link.h", "core/link.c"),
    ("core/batch.h", "core/batch.c"),
    ("apps/basic/basic.h", "apps/basic/basic.c"),
    ("lib/virtio/vring.h", None),
    ("apps/vguest/virtq.h", "apps/vguest/virtq.c"),
    ("apps/vguest/checksum.h", "apps/vguest/checksum.c"),
    ("apps/pcap/pcap.h", "apps/pcap/pcap.c"),
    ("apps/socket/fdio.h", "apps/socket/fdio.c"),
    ("lib/virtio/device_ring.h", "lib/virtio/device_ring.c"),
    ("lib/bpf.h", "lib/bpf.c"),
    ("apps/rss/rss.h", "apps/rss/rss.c"),
]

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


def make_builder() -> cffi.FFI:
    """Returns the cffi builder for ``snabbpy._native``."""
    ffibuilder = cffi.FFI()
    cdefs, csource = [], [PRELUDE]
    for header, _ in PARTS:
        text = _read(header)
        cdefs.append(text)
        csource.append(f"/* {header} */\n" + _c_view_of_header(text))
    for _, source in PARTS:
        if source:
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
