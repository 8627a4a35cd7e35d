"""The order in which the engine pushes apps: upstream before downstream."""

from __future__ import annotations

from collections.abc import Iterable

from snabbpy.core.config import LinkSpec


def push_order(apps: Iterable[str], links: Iterable[LinkSpec]) -> list[str]:
    """Topological order of ``apps`` along ``links`` (Kahn's algorithm), so
    packets a push transmits are pushed on in the same breath. Apps in a
    cycle follow in configuration order."""
    apps = list(apps)
    indegree = dict.fromkeys(apps, 0)
    downstream: dict[str, list[str]] = {a: [] for a in apps}
    for ls in links:
        if ls.from_app != ls.to_app:
            downstream[ls.from_app].append(ls.to_app)
            indegree[ls.to_app] += 1
    ready = [a for a in apps if indegree[a] == 0]
    order: list[str] = []
    while ready:
        a = ready.pop(0)
        order.append(a)
        for b in downstream[a]:
            indegree[b] -= 1
            if indegree[b] == 0:
                ready.append(b)
    order += [a for a in apps if a not in order]
    return order
