"""BAR access for userspace drivers: I/O port BARs through sysfs
``resourceN`` pread/pwrite, memory BARs mapped from it. Used through
``snabbpy.lib.pci`` (``PCIDevice.open_bar``), which re-exports these names.
"""

from __future__ import annotations

import errno
import mmap
import os
from pathlib import Path

_MEM_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}


class PCIError(OSError):
    """A PCI operation failed; the message says what is missing or wrong."""



def sysfs_error(e: OSError, what: str) -> PCIError:
    """A PCIError for a failed sysfs access, saying what to do about it."""
    if e.errno in (errno.EACCES, errno.EPERM):
        return PCIError(f"{what}: permission denied (must run as root)")
    if e.errno == errno.ENOENT:
        return PCIError(f"{what}: {e.filename} does not exist")
    return PCIError(f"{what}: {e.strerror}")


class IOBar:
    """An I/O port BAR accessed through sysfs resourceN with pread/pwrite."""

    def __init__(self, path: Path, size: int) -> None:
        self.path, self.size = path, size
        try:
            self.fd = os.open(path, os.O_RDWR)
        except OSError as e:
            raise sysfs_error(e, f"open I/O BAR {path}") from None

    def _check(self, offset: int, width: int) -> None:
        if width not in (1, 2, 4):
            raise PCIError(f"I/O BAR access width must be 1, 2 or 4 bytes, not {width}")
        if offset < 0 or offset + width > self.size:
            raise PCIError(f"I/O BAR access at {offset:#x}+{width} outside {self.size:#x} bytes")

    def read(self, offset: int, width: int) -> int:
        """Read a little-endian value of `width` bytes at `offset`."""
        self._check(offset, width)
        try:
            data = os.pread(self.fd, width, offset)
        except OSError as e:
            raise sysfs_error(e, f"I/O BAR {self.path}: read at {offset:#x}") from None
        if len(data) != width:  # a short read would pass for a register of zeros
            raise PCIError(f"I/O BAR {self.path}: read of {width} bytes at {offset:#x} "
                           f"returned {len(data)}")
        return int.from_bytes(data, "little")

    def write(self, offset: int, width: int, value: int) -> None:
        """Write a little-endian value of `width` bytes at `offset`."""
        self._check(offset, width)
        try:
            os.pwrite(self.fd, value.to_bytes(width, "little"), offset)
        except OSError as e:
            raise sysfs_error(e, f"I/O BAR {self.path}: write at {offset:#x}") from None

    def close(self) -> None:
        """Release the file descriptor."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class MemBar:
    """A memory BAR mapped from sysfs resourceN, read and written by width.

    Each access goes through a typed memoryview, so it is one load or store
    of exactly that width: device registers care about access size.
    """

    def __init__(self, path: Path, size: int) -> None:
        self.path, self.size = path, size
        try:
            fd = os.open(path, os.O_RDWR | os.O_SYNC)
        except OSError as e:
            raise sysfs_error(e, f"open memory BAR {path}") from None
        try:
            self.map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as e:
            raise sysfs_error(e, f"mmap memory BAR {path}") from None
        finally:
            os.close(fd)
        self._views = {w: memoryview(self.map).cast(f) for w, f in _MEM_FORMATS.items()}

    def _index(self, offset: int, width: int) -> int:
        if width not in _MEM_FORMATS:
            raise PCIError(f"memory BAR access width must be 1, 2, 4 or 8 bytes, not {width}")
        if offset % width or offset < 0 or offset + width > self.size:
            raise PCIError(f"memory BAR access at {offset:#x}+{width} unaligned or outside")
        return offset // width

    def read(self, offset: int, width: int) -> int:
        """Read a `width`-byte value (8, 16, 32 or 64 bits) at `offset`."""
        return self._views[width][self._index(offset, width)]

    def write(self, offset: int, width: int, value: int) -> None:
        """Write a `width`-byte value at `offset`."""
        self._views[width][self._index(offset, width)] = value

    def close(self) -> None:
        """Unmap the BAR."""
        for view in self._views.values():
            view.release()
        self._views = {}
        self.map.close()
