"""One report for a graph spread over workers: the counters of every
process put together under the graph's own link and app names.

A link inside one worker is reported as it is. A link between workers
(an interlink) is reported under its own spec: what was sent and dropped
from the sender's side (the link into the Transmitter), what was
received from the receiver's side (the link out of the Receiver). The
interlink apps themselves are left out; the rings' own counters are under
``interlinks``."""

from __future__ import annotations

from typing import Any

from snabbpy.core import counter, packet, registry
from snabbpy.core.accounting import lost_line
from snabbpy.core.engine_stats import FILE_NAME as ENGINE_FILE
from snabbpy.workers.placement import MAIN, Placement


def merge(p: Placement, counters: dict[str, dict], rings: dict[str, dict]) -> dict[str, Any]:
    """``{"links", "apps", "interlinks"}`` of the whole graph out of each
    worker's ``Engine.counters()`` (``counters`` by worker name) and the
    rings' counters (by link spec)."""
    hidden = {a for il in p.interlinks.values() for a in (il.tx_app, il.rx_app)}
    links: dict[str, dict] = {}
    apps: dict[str, dict] = {}
    for worker, part in p.parts.items():
        mine = counters.get(worker) or {"links": {}, "apps": {}}
        for spec in part.links:
            ls = part.links[spec]
            if ls.to_app not in hidden and ls.from_app not in hidden and spec in mine["links"]:
                links[spec] = mine["links"][spec]
        for name, values in mine["apps"].items():
            if name not in hidden:
                apps[name] = values
    for spec, il in p.interlinks.items():
        tx = _find(counters.get(il.sender), il.tx_app, "to")
        rx = _find(counters.get(il.receiver), il.rx_app, "from")
        links[spec] = {"txpackets": tx.get("txpackets", 0), "txbytes": tx.get("txbytes", 0),
                       "rxpackets": rx.get("rxpackets", 0), "rxbytes": rx.get("rxbytes", 0),
                       "txdrop": tx.get("txdrop", 0)}
    interlinks = {spec: {"from": il.sender, "to": il.receiver, **rings.get(spec, {})}
                  for spec, il in p.interlinks.items()}
    return {"links": links, "apps": apps, "interlinks": interlinks}


def _find(counters: dict | None, app: str, end: str) -> dict[str, int]:
    """The counters of the link that goes ``to`` (or comes ``from``) ``app``."""
    for spec, values in (counters or {}).get("links", {}).items():
        left, _, right = spec.partition(" -> ")
        if (right if end == "to" else left).split(".")[0] == app:
            return values
    return {}


class LoadSampler:
    """The load line of the whole graph: packets finished per second in
    all processes together. A packet copied into an interlink is freed by
    its sender but not finished (its copy goes on), so those are taken
    out."""

    def __init__(self, supervisor) -> None:
        self.sup = supervisor
        self._last = self._sample()

    def _sample(self) -> tuple[int, int, int, int]:
        s = packet.stats()
        freed, nbytes = s["freed"], s["freed_bytes"]
        drops = sum(v["txdrop"] for v in self.sup.engine.counters()["links"].values())
        for handle in self.sup.handles.values():
            pid = handle.process.pid
            try:
                e = counter.read(registry.process_dir(pid) / ENGINE_FILE)
                freed, nbytes = freed + e["freed"], nbytes + e["freed_bytes"]
            except (OSError, ValueError, KeyError):
                pass
            drops += sum(v.get("txdrop", 0) for v in registry.read_process(pid)["links"].values())
        for values in self.sup.ring_counters().values():
            freed -= values.get("txpackets", 0)
            nbytes -= values.get("txbytes", 0)
        return self.sup.engine.clock(), freed, nbytes, drops

    def line(self) -> str:
        """The rates since the last line, as ``LoadReporter.line``."""
        now, freed, nbytes, drops = self._sample()
        then, freed0, bytes0, drops0 = self._last
        self._last = (now, freed, nbytes, drops)
        dt = max(now - then, 1) / 1e9
        return (f"load: time: {dt:.2f}s  rate: {(freed - freed0) / dt / 1e6:.3f} Mpps  "
                f"{(nbytes - bytes0) * 8 / dt / 1e9:.3f} Gbit/s  drops: {drops - drops0}"
                f"  workers: {len(self.sup.handles) + 1}")


def worker_counters(supervisor) -> dict[str, dict]:
    """Each worker's last reported ``Engine.counters()``, the main one's now."""
    result = {MAIN: supervisor.engine.counters()}
    for name, handle in supervisor.handles.items():
        if handle.report:
            result[name] = handle.report["counters"]
    return result


def lost(supervisor) -> dict[str, dict[str, tuple[int, int]]]:
    """The packets each app lost, by worker (``MAIN`` for the main
    engine's, once it stopped): worker -> app -> (lost, received)."""
    engine = supervisor.engine
    result = {MAIN: {n: (c, engine.accounts.received.get(n, 0)) for n, c in engine.lost.items()}}
    result.update(supervisor.lost_packets())
    return {w: apps for w, apps in result.items() if apps}


def lost_lines(by_worker: dict[str, dict[str, tuple[int, int]]]) -> list[str]:
    """One line per app that lost packets, as in one process; an app on a
    worker is named with its worker ("worker 'w1': app 'x' received ...")."""
    lines = []
    for worker, apps in by_worker.items():
        where = "" if worker == MAIN else f"worker {worker!r}: "
        lines += [where + lost_line(app, count, received)
                  for app, (count, received) in apps.items()]
    return lines
