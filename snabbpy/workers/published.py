"""What a supervisor publishes about its graph, for `snabbpy top` and the
metrics: its workers, and for each interlink the two links that carry it
(into the Transmitter in the sending process, out of the Receiver in the
receiving one). Readers show those links as the link the user wrote,
``a.out -> b.in (interlink to w1)``, instead of under the interlink apps'
internal names.

The file is ``graph.json`` in the supervisor's counter directory
(``registry.process_dir()``), rewritten at every configure; a worker's
``info.json`` names its supervisor's pid."""

from __future__ import annotations

import json

from snabbpy.core import registry
from snabbpy.workers.placement import MAIN

FILE = "graph.json"


def write(p) -> None:
    """Publishes placement ``p`` (``placement.Placement``) for this process."""
    interlinks = []
    for spec, il in p.interlinks.items():
        tx = next(k for k, ls in p.parts[il.sender].links.items() if ls.to_app == il.tx_app)
        rx = next(k for k, ls in p.parts[il.receiver].links.items() if ls.from_app == il.rx_app)
        interlinks.append({"link": spec, "from": il.sender, "to": il.receiver,
                           "tx_link": tx, "rx_link": rx})
    path = registry.process_dir() / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"workers": p.workers, "interlinks": interlinks}) + "\n")
    tmp.replace(path)  # readers never see half a file


def read(pid: int) -> dict | None:
    """What supervisor ``pid`` published, or None (not a supervisor, gone,
    or a file that is not ours)."""
    try:
        graph = json.loads((registry.process_dir(pid) / FILE).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(graph, dict) and isinstance(graph.get("interlinks"), list)
    return graph if ok else None


def graph_of(pid: int, info: dict | None) -> tuple[str, dict] | None:
    """(worker name, published graph) of process ``pid`` when it is part of
    a graph over workers (``main`` for the supervisor itself), else None."""
    info = info or {}
    if isinstance(info.get("worker"), str) and isinstance(info.get("supervisor"), int):
        graph = read(info["supervisor"])
        return (info["worker"], graph) if graph is not None else None
    graph = read(pid)
    return (MAIN, graph) if graph is not None else None


def interlink_ends(graph: dict, worker: str) -> dict[str, tuple[str, str, str]]:
    """The links of ``worker``'s process that carry an interlink: their
    spec there -> (the user's link, "to" or "from", the other worker)."""
    ends = {}
    for il in graph.get("interlinks", []):
        if not isinstance(il, dict):
            continue
        if il.get("from") == worker and isinstance(il.get("tx_link"), str):
            ends[il["tx_link"]] = (str(il.get("link")), "to", str(il.get("to")))
        if il.get("to") == worker and isinstance(il.get("rx_link"), str):
            ends[il["rx_link"]] = (str(il.get("link")), "from", str(il.get("from")))
    return ends


def link_names(graph: dict, worker: str) -> dict[str, str]:
    """``interlink_ends`` as names to show: "a.out -> b.in (interlink to w1)"."""
    return {raw: f"{link} (interlink {way} {other})"
            for raw, (link, way, other) in interlink_ends(graph, worker).items()}
