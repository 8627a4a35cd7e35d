"""Counters: named uint64 values, in shared-memory files when published.

A running snabbpy process keeps its link and app counters in files under
its own directory (see ``registry``), mapped into memory and updated in
place, so another process (``snabbpy top``) reads them live with ``read``.

File layout (native byte order)::

    "SNBPYCNT"  u32 count  u32 reserved
    count x 32-byte NUL-padded names
    count x u64 values
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterable
from pathlib import Path

from snabbpy.core.native import ffi

MAGIC = b"SNBPYCNT"
NAME_SIZE = 32
_HEADER = struct.Struct("=8sII")


def _layout(count: int) -> tuple[int, int]:
    values_at = _HEADER.size + NAME_SIZE * count
    return values_at, values_at + 8 * count


def _map_file(path: Path, header: bytes, size: int) -> mmap.mmap:
    """A new counter file of ``size`` bytes starting with ``header``,
    mapped. Its blocks are allocated now, so a full file system is an
    OSError naming ``path`` here, never a SIGBUS at the first count."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w+b") as f:
            f.write(header)
            f.flush()
            os.posix_fallocate(f.fileno(), 0, size)
            return mmap.mmap(f.fileno(), size)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


class Counters:
    """A fixed set of named counters; in a shared-memory file when given a
    ``path``, in private memory otherwise (tests, apps built by hand).

    ``pointer`` is the ``uint64_t *`` of the values, for C code to update.
    """

    def __init__(self, names: Iterable[str], path: Path | None = None) -> None:
        self.names = tuple(names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.path = path
        values_at, size = _layout(len(self.names))
        if path is None:
            self._memory = ffi.new("uint8_t[]", max(size, 8))
            base = self._memory
        else:
            self._memory = _map_file(path, self._header(), size)
            base = ffi.from_buffer(self._memory)
        self.pointer = ffi.cast("uint64_t *", base + values_at)

    def _header(self) -> bytes:
        names = b"".join(n.encode()[:NAME_SIZE].ljust(NAME_SIZE, b"\0") for n in self.names)
        return _HEADER.pack(MAGIC, len(self.names), 0) + names

    def __getitem__(self, name: str) -> int:
        return self.pointer[self.index[name]]

    def __setitem__(self, name: str, value: int) -> None:
        self.pointer[self.index[name]] = value

    def add(self, name: str, n: int = 1) -> None:
        """Adds ``n`` to counter ``name``."""
        self.pointer[self.index[name]] += n

    def snapshot(self) -> dict[str, int]:
        """All counters, by name."""
        return {name: self.pointer[i] for i, name in enumerate(self.names)}

    def close(self) -> None:
        """Removes the shared-memory file (the values stay readable here)."""
        if self.path is not None:
            values = self.snapshot()
            self.path.unlink(missing_ok=True)
            self.path = None
            self.__init__(self.names)
            for name, value in values.items():
                self[name] = value


def read(path: Path) -> dict[str, int]:
    """Reads a counter file written by any snabbpy process."""
    data = Path(path).read_bytes()
    if len(data) < _HEADER.size:
        raise ValueError(f"{path}: not a snabbpy counter file (too short)")
    magic, count, _ = _HEADER.unpack_from(data)
    values_at, size = _layout(count)
    if magic != MAGIC or len(data) < size:
        raise ValueError(f"{path}: not a snabbpy counter file")
    names = [
        data[_HEADER.size + i * NAME_SIZE:][:NAME_SIZE].rstrip(b"\0").decode()
        for i in range(count)
    ]
    values = struct.unpack_from(f"={count}Q", data, values_at)
    return dict(zip(names, values, strict=True))
