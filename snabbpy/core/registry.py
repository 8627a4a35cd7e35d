"""The process registry: which snabbpy processes publish counters, and where.

Each process that publishes (``Engine(publish=True)``) owns a directory
``shm_root()/<pid>/`` holding its counter files (``links/``, ``apps/``, see
``counter``) and an ``info.json`` written by ``write_process_info``. This
is what ``snabbpy ps``, ``top``, ``graph --pid`` and the exporter list and
read; a directory whose process is gone is stale and is cleaned up.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from snabbpy.core.counter import read


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


def safe_name(name: str) -> str:
    """A file name for a link spec or app name ("a.out -> b.in" ->
    "a.out->b.in")."""
    return name.replace(" ", "").replace("/", "_")


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
