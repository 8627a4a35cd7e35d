"""`snabbpy top` and `snabbpy ps`: what running snabbpy processes do.

Both read the counter files every process publishes (``snabbpy.core.
counter``), so they work on any running engine without talking to it.
``top`` samples them twice and shows the difference as rates: packets/s,
bits/s (of packet payload, from ``txbytes``) and drops/s per link, and the
rate of every counter of every app.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

import click

from snabbpy.core import registry
from snabbpy.core.config import ConfigError
from snabbpy.workers import published
from snabbpy.workers.placement import MAIN

Snapshot = dict[str, dict[str, dict[str, int]]]


def workers_of(pid: int, running: list[int]) -> dict[str, int]:
    """The worker processes (name -> pid) that supervisor ``pid`` runs."""
    found = {}
    for other in running:
        info = registry.process_info(other) or {}
        if info.get("supervisor") == pid and isinstance(info.get("worker"), str):
            found[info["worker"]] = other
    return dict(sorted(found.items()))


def choose_pid(pid: int | None) -> int:
    """The process to look at: ``pid`` when it runs, else the only one
    running (its workers aside). A ConfigError says why there is none."""
    everything = registry.list_processes()
    workers = {w for p in everything for w in workers_of(p, everything).values()}
    running = [p for p in everything if p not in workers] if pid is None else everything
    if pid is not None:
        if pid not in running:
            raise ConfigError(f"process {pid} is not a running snabbpy process "
                              f"(running: {', '.join(map(str, running)) or 'none'})")
        return pid
    if not running:
        raise ConfigError(f"no snabbpy process is running (none publishes counters in "
                          f"{registry.shm_root()})")
    if len(running) > 1:
        raise ConfigError(f"{len(running)} snabbpy processes are running "
                          f"({', '.join(map(str, running))}): name one, e.g. snabbpy top "
                          f"{running[0]}")
    return running[0]


def snapshot(pid: int) -> dict:
    """One reading of every counter: ``{"pid", "time", "links", "apps"}``;
    those of a supervisor's workers too, named ``[worker] link-or-app``,
    and the links that carry an interlink under the link the user wrote
    (``[w1] a.out -> b.in (interlink from main)``)."""
    graph = published.read(pid) or {}
    snap = {"pid": pid, "time": time.time(), **_read(pid, graph, MAIN)}
    snap["workers"] = workers_of(pid, registry.list_processes(clean=False))
    for name, worker_pid in snap["workers"].items():
        for kind, values in _read(worker_pid, graph, name).items():
            snap[kind].update({f"[{name}] {key}": v for key, v in values.items()})
    return snap


def _read(pid: int, graph: dict, worker: str) -> dict:
    """``registry.read_process(pid)`` with interlink links renamed."""
    seen = registry.read_process(pid)
    names = published.link_names(graph, worker)
    seen["links"] = {names.get(spec, spec): v for spec, v in seen["links"].items()}
    return seen


def rates(before: Snapshot, after: Snapshot, seconds: float) -> Snapshot:
    """Per-second change of every counter present in both snapshots."""
    seconds = max(seconds, 1e-9)
    out: Snapshot = {}
    for kind in ("links", "apps"):
        out[kind] = {}
        for name, now in after.get(kind, {}).items():
            then = before.get(kind, {}).get(name, {})
            out[kind][name] = {k: (v - then[k]) / seconds for k, v in now.items() if k in then}
    return out


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


def format_view(snap: dict, rate: Snapshot | None, info: dict | None = None) -> str:
    """The text `snabbpy top` shows: a header, a row per link, a block per
    app. Without ``rate`` (``--once``) only totals."""
    title = f"snabbpy top: pid {snap['pid']}"
    if info and info.get("config"):
        title += f"  config {info['config']}"
    if snap.get("workers"):
        title += "  workers " + ", ".join(f"{n} (pid {p})" for n, p in snap["workers"].items())
    lines = [title, "", f"{'link':<54} {'packets/s':>9} {'bits/s':>9} {'drops/s':>9}"
             f" {'packets':>15} {'drops':>12}"]
    for spec, c in sorted(snap["links"].items()):
        r = (rate or {}).get("links", {}).get(spec, {})
        lines.append(f"{spec:<54} {_si(r.get('txpackets', 0)):>9} "
                     f"{_si(r.get('txbytes', 0) * 8):>9} {_si(r.get('txdrop', 0)):>9} "
                     f"{c.get('txpackets', 0):>15,} {c.get('txdrop', 0):>12,}")
    for name, c in sorted(snap["apps"].items()):
        if not c:
            continue
        lines += ["", f"app {name}"]
        r = (rate or {}).get("apps", {}).get(name, {})
        for key, value in c.items():
            per_s = f"{_si(r[key])}/s" if key in r else ""
            lines.append(f"  {key:<30} {value:>20,} {per_s:>10}")
    return "\n".join(lines)


def live(pid: int, interval: float, clear: bool = True) -> None:
    """Redraws the view every ``interval`` seconds until Ctrl-C or until
    the process exits."""
    before = snapshot(pid)
    info = registry.process_info(pid)
    try:
        while True:
            time.sleep(interval)
            if not registry.is_running(pid):
                click.echo(f"snabbpy top: process {pid} exited")
                return
            after = snapshot(pid)
            view = format_view(after, rates(before, after, after["time"] - before["time"]),
                               info)
            click.echo(("\x1b[H\x1b[2J" if clear else "") + view)
            before = after
    except KeyboardInterrupt:
        pass


@click.command()
@click.argument("pid", type=int, required=False)
@click.option("--interval", type=float, default=1.0, show_default=True,
              help="Seconds between refreshes.")
@click.option("--once", is_flag=True, help="Print one snapshot of the counters and exit.")
@click.option("--json", "as_json", is_flag=True,
              help="With --once: print {pid, links, apps} as JSON.")
def top(pid: int | None, interval: float, once: bool, as_json: bool) -> None:
    """Show live packets/s, bits/s and drops of a running snabbpy process
    (PID may be left out when only one runs)."""
    pid = choose_pid(pid)
    if once:
        snap = snapshot(pid)
        if as_json:
            click.echo(json.dumps({k: snap[k] for k in ("pid", "workers", "links", "apps")},
                                  indent=2))
        else:
            click.echo(format_view(snap, None, registry.process_info(pid)))
        return
    if interval <= 0:
        raise ConfigError(f"--interval {interval}: must be more than 0 seconds")
    live(pid, interval, clear=os.isatty(1))


def _from_proc(pid: int) -> tuple[float | None, str | None]:
    """Start time and config file of a process without an info file,
    from /proc (its command line ``... run CONFIG.yaml``)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        started = registry.start_time(pid)
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None, None
    if "run" in argv:
        args = [a for a in argv[argv.index("run") + 1:] if a and not a.startswith("-")]
        if args:
            return started, os.path.join(cwd, args[0])
    return started, None


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def ps(as_json: bool) -> None:
    """List running snabbpy processes: pid, start time, config file."""
    rows = []
    for pid in registry.list_processes():
        info = registry.process_info(pid) or {}
        started, config = info.get("started"), info.get("config")
        if info == {}:
            started, config = _from_proc(pid)
        # The file is another process's: show what is not a time or a path as unknown.
        started = started if isinstance(started, (int, float)) else None
        config = config if isinstance(config, str) else None
        worker = info.get("worker") if isinstance(info.get("worker"), str) else None
        supervisor = info.get("supervisor") if isinstance(info.get("supervisor"), int) else None
        row = {"pid": pid, "started": started, "config": config}
        if worker:  # a worker process of a supervisor
            row.update(worker=worker, supervisor=supervisor)
        rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'PID':>8}  {'STARTED':<19}  {'WORKER':<16}  CONFIG")
    for r in rows:
        worker = f"{r['worker']} of {r['supervisor']}" if r.get("worker") else "main"
        click.echo(f"{r['pid']:>8}  {_when(r['started']):<19}  {worker:<16}  "
                   f"{r['config'] or '?'}")


def _when(started: float | None) -> str:
    """A start time as local date and time, "?" when unknown or impossible."""
    try:
        return datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S") if started else "?"
    except (OverflowError, OSError, ValueError):
        return "?"
