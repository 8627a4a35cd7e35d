"""Counters: named uint64 values in shared-memory files.

Every running snabbpy process keeps its link and app counters in files
under its own directory (``shm_root()/<pid>/``), mapped into memory and
updated in place, so another process (``snabbpy top``) reads them live.

File layout (native byte order)::

    "SNBPYCNT"  u32 count  u32 reserved
    count x 32-byte NUL-padded names
    count x u64 values
"""

from __future__ import annotations

import mmap
import os
import shutil
import struct
from collections.abc import Iterable
from pathlib import Path

from snabbpy.core.native import ffi

MAGIC = b"SNBPYCNT"
NAME_SIZE = 32
_HEADER = struct.Struct("=8sII")


def shm_root() -> Path:
    """Where processes publish counters: $SNABBPY_SHM, else /run/snabbpy
    (as root) or /dev/shm/snabbpy-UID."""
    if "SNABBPY_SHM" in os.environ:
        return Path(os.environ["SNABBPY_SHM"])
    if os.geteuid() == 0 and os.path.isdir("/run"):
        return Path("/run/snabbpy")
    return Path(f"/dev/shm/snabbpy-{os.geteuid()}")


def process_dir(pid: int | None = None) -> Path:
    """The counter directory of process ``pid`` (default: this one)."""
    return shm_root() / str(pid or os.getpid())


def remove_process_dir(pid: int | None = None) -> None:
    """Removes a process's counter directory (on exit, or a stale one)."""
    shutil.rmtree(process_dir(pid), ignore_errors=True)


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


def safe_name(name: str) -> str:
    """A file name for a link spec or app name ("a.out -> b.in" ->
    "a.out->b.in")."""
    return name.replace(" ", "").replace("/", "_")


# -- processes: what `snabbpy ps` and `snabbpy top` find ----------------

INFO_FILE = "info.json"


def link_spec(file_name: str) -> str:
    """The link spec a counter file stands for ("a.out->b.in" ->
    "a.out -> b.in"); app and port names cannot hold '>', so this is exact."""
    return file_name.replace("->", " -> ")


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (/proc/PID/stat
    field 22); None when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])


def start_time(pid: int) -> float | None:
    """When ``pid`` started, in seconds since the epoch; None when gone."""
    ticks = start_ticks(pid)
    try:
        stat = Path("/proc/stat").read_text().split("\nbtime ", 1)[1]
    except (OSError, IndexError):
        return None
    boot = int(stat.split()[0])
    return None if ticks is None else boot + ticks / os.sysconf("SC_CLK_TCK")


def write_process_info(config_file: str | None = None) -> Path:
    """Records in this process's counter directory what `snabbpy ps`
    shows: pid, start time, config file (absolute), command line. Call it
    once the engine publishes counters."""
    import json
    import sys
    import time

    info = {
        "pid": os.getpid(),
        "started": time.time(),
        "start_ticks": start_ticks(os.getpid()),
        "config": os.path.abspath(config_file) if config_file else None,
        "argv": sys.argv,
    }
    path = process_dir() / INFO_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info) + "\n")
    tmp.replace(path)  # readers never see half a file
    return path


def process_info(pid: int) -> dict | None:
    """The info a process wrote with ``write_process_info``, or None."""
    import json

    try:
        info = json.loads((process_dir(pid) / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None  # not ours: as if absent


def is_running(pid: int) -> bool:
    """True when ``pid`` is alive and is the process that made its counter
    directory (not a later process that got the same pid)."""
    ticks = start_ticks(pid)
    if ticks is None:
        return False
    info = process_info(pid) or {}
    return info.get("start_ticks") in (None, ticks)


def list_processes(clean: bool = True) -> list[int]:
    """Pids of the running processes that publish counters, in order.
    Directories of dead processes are stale: removed when ``clean``."""
    root = shm_root()
    try:
        # isascii: "²" is a digit to isdigit() but not to int()
        entries = sorted(int(e.name) for e in root.iterdir()
                         if e.name.isascii() and e.name.isdigit())
    except OSError:
        return []
    alive = []
    for pid in entries:
        if is_running(pid):
            alive.append(pid)
        elif clean:
            remove_process_dir(pid)
    return alive


def read_process(pid: int) -> dict[str, dict[str, dict[str, int]]]:
    """Every counter a process publishes: ``{"links": {spec: {...}},
    "apps": {name: {...}}}``. Files being created or removed right now are
    left out."""
    result: dict[str, dict[str, dict[str, int]]] = {"links": {}, "apps": {}}
    for kind in result:
        try:
            files = sorted((process_dir(pid) / kind).iterdir())
        except OSError:
            continue
        for f in files:
            try:
                values = read(f)
            except (OSError, ValueError):
                continue
            result[kind][link_spec(f.name) if kind == "links" else f.name] = values
    return result
