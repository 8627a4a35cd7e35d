"""Graphs as Graphviz dot: `snabbpy graph CONFIG.yaml`."""

from __future__ import annotations

from snabbpy.core.config import Config


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(c: Config, counters: dict[str, dict] | None = None) -> str:
    """The graph in dot: a box per app (name and class), an edge per link
    labelled with its ports, and with its packet count when ``counters``
    (link spec -> counters) are given."""
    lines = ["digraph snabbpy {", "  rankdir=LR;", "  node [shape=box];"]
    for name, spec in c.apps.items():
        label = f"{name}\\n{spec.class_name}"
        lines.append(f"  {_quote(name)} [label={_quote(label)}];")
    for key, ls in c.links.items():
        label = f"{ls.from_port} -> {ls.to_port}"
        if counters and key in counters:
            label += f"\\n{counters[key].get('txpackets', 0):,} packets"
        lines.append(f"  {_quote(ls.from_app)} -> {_quote(ls.to_app)} [label={_quote(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
