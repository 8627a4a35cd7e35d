"""Reads the counters of every running snabbpy process for a scrape, the
way `snabbpy top` does: only their shared-memory files, never a lock or a
message, so a scrape cannot slow or block a graph."""

from __future__ import annotations

from pathlib import Path

from snabbpy.core import counter, registry
from snabbpy.core.engine_stats import FILE_NAME as ENGINE_FILE
from snabbpy.core.engine_stats import GAUGES
from snabbpy.metrics.exposition import ProcessCounters
from snabbpy.workers import published


def process_name(pid: int, info: dict | None) -> str:
    """What to call a process: its config file's name without the suffix
    ("basic1" for configs/basic1.yaml), else its command name."""
    config = (info or {}).get("config")
    if isinstance(config, str) and config:
        return Path(config).stem
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def read_engine(pid: int) -> dict[str, int]:
    """The engine's own counters, when the process publishes them."""
    try:
        return counter.read(registry.process_dir(pid) / ENGINE_FILE)
    except (OSError, ValueError):
        return {}


def read_one(pid: int) -> ProcessCounters | None:
    """One process's counters, or None when it is gone (before or while
    being read: a process that exits mid-scrape is left out, not half-read)."""
    info = registry.process_info(pid)
    seen = registry.read_process(pid)
    engine = read_engine(pid)
    if not registry.is_running(pid):
        return None
    started = (info or {}).get("started")
    one = ProcessCounters(
        pid=pid, name=process_name(pid, info), links=seen["links"], apps=seen["apps"],
        engine={k: v for k, v in engine.items() if k not in GAUGES},
        engine_gauges={k: v for k, v in engine.items() if k in GAUGES},
        started=float(started) if isinstance(started, (int, float)) else None)
    part = published.graph_of(pid, info)
    if part is not None:
        in_graph(one, *part)
    return one


def in_graph(one: ProcessCounters, worker: str, graph: dict) -> None:
    """Labels ``one`` as worker ``worker`` of a graph over workers, and
    shows the links that carry an interlink under the link the user wrote
    (with the side: "out" of the sender, "in" to the receiver)."""
    one.worker = worker
    ends = published.interlink_ends(graph, worker)
    links = {}
    for spec, values in one.links.items():
        if spec in ends:
            link, way, _ = ends[spec]
            spec, one.interlinks[link] = link, "out" if way == "to" else "in"
        links[spec] = values
    one.links = links


def read_all() -> list[ProcessCounters]:
    """Every running process's counters. Directories of dead processes are
    ignored (and left for `snabbpy ps`/`top` to clean: a scrape writes
    nothing)."""
    out = []
    for pid in registry.list_processes(clean=False):
        one = read_one(pid)
        if one is not None:
            out.append(one)
    return out
