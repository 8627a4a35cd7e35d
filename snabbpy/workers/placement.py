"""Placement: which process runs which part of a graph.

``place(c, ring_dir)`` splits configuration ``c`` into one graph per
worker (``MAIN`` for the apps without a worker). A link whose two apps
run in different workers becomes an *interlink*: in the sending worker
the link ends at an ``interlink.Transmitter``, in the receiving one it
starts at an ``interlink.Receiver``, both on the same ring file in
``ring_dir``. Pure: it makes no file and starts nothing."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snabbpy.apps.interlink import Receiver, Transmitter
from snabbpy.core import config, registry
from snabbpy.core.config import Config, ConfigError, LinkSpec

#: The name of the main process among workers.
MAIN = config.MAIN


@dataclass(frozen=True)
class Interlink:
    """One link between apps of two workers, and the apps that carry it."""

    spec: str          # the link as the graph says it: "a.out -> b.in"
    sender: str        # worker of the link's first app
    receiver: str      # worker of its second app
    path: Path         # the ring file
    tx_app: str        # the Transmitter in the sender's graph
    rx_app: str        # the Receiver in the receiver's graph


@dataclass
class Placement:
    """Each worker's graph (``MAIN`` always there) and the interlinks."""

    parts: dict[str, Config] = field(default_factory=dict)
    interlinks: dict[str, Interlink] = field(default_factory=dict)
    cpus: dict[str, int | None] = field(default_factory=dict)

    @property
    def workers(self) -> list[str]:
        """The worker processes to run, MAIN left out."""
        return [w for w in self.parts if w != MAIN]


def worker_of(spec: config.AppSpec) -> str:
    """The worker an app runs in."""
    return spec.worker or MAIN


def check(c: Config, allowed_cpus: set[int] | None = None) -> None:
    """Refuses, naming it, an app on a worker the ``workers:`` mapping does
    not declare (when there is one), a cpu this process may not run on,
    two workers on one cpu, and app configurations that cannot be sent to
    a worker (not JSON)."""
    import json

    allowed = os.sched_getaffinity(0) if allowed_cpus is None else allowed_cpus
    declared = set(c.workers) | {MAIN}
    for name, spec in c.apps.items():
        if c.workers and worker_of(spec) not in declared:
            raise ConfigError(f"app {name!r}: worker {spec.worker!r} is not in 'workers' "
                              f"(declared: {', '.join(sorted(c.workers))})")
        if spec.worker and spec.worker != MAIN:
            try:
                json.dumps(spec.conf)
            except (TypeError, ValueError):
                raise ConfigError(f"app {name!r}: its config cannot be sent to worker "
                                  f"{spec.worker!r} (values must be YAML/JSON data)") from None
    used: dict[int, str] = {}
    for worker, body in c.workers.items():
        cpu = body.get("cpu")
        if cpu is None:
            continue
        if cpu not in allowed:
            raise ConfigError(f"worker {worker!r}: cpu {cpu} is not one this process may use "
                              f"(allowed: {', '.join(map(str, sorted(allowed)))})")
        if cpu in used:
            raise ConfigError(f"workers {used[cpu]!r} and {worker!r} are both on cpu {cpu}")
        used[cpu] = worker


def _unique(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def place(c: Config, ring_dir: Path) -> Placement:
    """Splits ``c`` by worker; see the module's docstring."""
    p = Placement()
    workers = [MAIN] + sorted({worker_of(s) for s in c.apps.values()} - {MAIN})
    for w in workers:
        p.parts[w] = config.new()
        p.cpus[w] = (c.workers.get(w) or {}).get("cpu")
    for name, spec in c.apps.items():
        p.parts[worker_of(spec)].apps[name] = spec
    taken = set(c.apps)
    for key, ls in sorted(c.links.items()):
        a, b = worker_of(c.apps[ls.from_app]), worker_of(c.apps[ls.to_app])
        if a == b:
            p.parts[a].links[key] = ls
            continue
        # The ends are in the file name: a ring changes when an end moves.
        il = Interlink(key, a, b, ring_dir / f"{registry.safe_name(key)}@{a}-{b}",
                       _unique(f"{ls.from_app}-{ls.from_port}-tx", taken),
                       _unique(f"{ls.to_app}-{ls.to_port}-rx", taken))
        p.interlinks[key] = il
        _add_ends(p, ls, il)
    return p


def _add_ends(p: Placement, ls: LinkSpec, il: Interlink) -> None:
    sender, receiver = p.parts[il.sender], p.parts[il.receiver]
    conf = {"path": str(il.path)}
    sender.apps[il.tx_app] = config.AppSpec(Transmitter, dict(conf),
                                            "snabbpy.apps.interlink:Transmitter", il.sender)
    receiver.apps[il.rx_app] = config.AppSpec(Receiver, dict(conf),
                                              "snabbpy.apps.interlink:Receiver", il.receiver)
    tx = LinkSpec(ls.from_app, ls.from_port, il.tx_app, "input")
    rx = LinkSpec(il.rx_app, "output", ls.to_app, ls.to_port)
    sender.links[str(tx)] = tx
    receiver.links[str(rx)] = rx


def to_doc(c: Config) -> dict[str, Any]:
    """``c`` as the data of a YAML graph (what a worker is sent): classes by
    name, configurations as validated; those of the main process's apps are
    left out (no worker needs them, and they need not be plain data)."""
    apps = {}
    for name, spec in c.apps.items():
        body: dict[str, Any] = {"class": spec.class_name or
                                f"{spec.cls.__module__}:{spec.cls.__qualname__}"}
        if worker_of(spec) != MAIN:
            body.update(config=spec.conf, worker=spec.worker)
        apps[name] = body
    return {"apps": apps, "links": list(c.links), "workers": c.workers}


class _Elsewhere:
    """Stands for an app of another worker in ``part_of``: its name and
    worker count, its class is not loaded."""


def part_of(doc: dict[str, Any], worker: str, ring_dir: Path) -> Config:
    """The graph ``worker`` runs, out of the whole graph ``doc`` (from
    ``to_doc``): only its own apps are loaded and validated."""
    c = config.new()
    for name, body in doc["apps"].items():
        if body.get("worker", MAIN) == worker:
            config.app(c, name, body["class"], body.get("config"), body.get("worker"))
        else:
            c.apps[name] = config.AppSpec(_Elsewhere, {}, body["class"], body.get("worker"))
    for spec in doc["links"]:
        ls = config.parse_link(spec)
        c.links[str(ls)] = ls
    part = place(c, ring_dir).parts.get(worker, config.new())
    config.check(part)
    return part


def uses_workers(c: Config) -> bool:
    """True when some app runs outside the main process."""
    return any(worker_of(s) != MAIN for s in c.apps.values())
