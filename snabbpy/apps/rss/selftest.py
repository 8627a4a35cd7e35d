"""`snabbpy selftest apps.rss`: both directions of 1024 flows through RSS
over 2, 3 and 4 outputs; each flow on one output, every output used,
every packet accounted for."""

from __future__ import annotations

from snabbpy.apps.rss.flows import Flows
from snabbpy.apps.rss.rss import RSS, flow_hash
from snabbpy.core import packet
from snabbpy.core.link import Link


def run() -> None:
    """AssertionError when a flow is split or a packet goes missing."""
    gen = Flows({"flows": 1024, "size": 64, "seed": 7})
    frames = list(gen.frames)
    for n in (2, 3, 4):
        app = RSS({})
        app.input = {"input": Link("input")}
        app.output = {f"out{i}": Link(f"out{i}") for i in range(n)}
        app.link()
        where: dict[int, set[str]] = {}
        for start in range(0, len(frames), 1000):
            for f in frames[start:start + 1000]:
                app.input["input"].transmit(packet.from_bytes(f))
            app.push()
            for name, link in app.output.items():
                while not link.empty():
                    p = link.receive()
                    where.setdefault(flow_hash(packet.to_bytes(p)), set()).add(name)
                    packet.free(p)
        assert len(where) == 1024, f"{len(where)} flows seen of 1024"
        split = [h for h, names in where.items() if len(names) > 1]
        assert not split, f"{len(split)} flows split over outputs of {n}"
        used = set().union(*where.values())
        assert len(used) == n, f"only {sorted(used)} of {n} outputs used"
    print("rss selftest: ok")
