"""Graphs as Graphviz dot: `snabbpy graph CONFIG.yaml`."""

from __future__ import annotations

from snabbpy.core.config import Config


def _quote(s: str) -> str:
    # Backslashes are left alone: "\\n" in a label is dot's line break.
    return '"' + s.replace('"', '\\"') + '"'


def to_dot(c: Config, counters: dict[str, dict] | None = None) -> str:
    """The graph in dot: a box per app (name and class), an edge per link
    labelled with its ports, and with its packet count when ``counters``
    (link spec -> counters) are given."""
    lines = ["digraph snabbpy {", "  rankdir=LR;", "  node [shape=box];"]
    for name, spec in c.apps.items():
        label = f"{name}\\n{spec.class_name}"
        if spec.worker:
            label += f"\\nworker {spec.worker}"
        lines.append(f"  {_quote(name)} [label={_quote(label)}];")
    for key, ls in c.links.items():
        label = f"{ls.from_port} -> {ls.to_port}"
        if counters and key in counters:
            label += f"\\n{counters[key].get('txpackets', 0):,} packets"
        lines.append(f"  {_quote(ls.from_app)} -> {_quote(ls.to_app)} [label={_quote(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


class RenderError(Exception):
    """Graphviz is missing or failed; the message says what to do."""


#: Image formats `dot` renders for `snabbpy graph --format`.
IMAGE_FORMATS = ("png", "svg")


def render(dot: str, fmt: str, dot_command: str = "dot") -> bytes:
    """Renders dot text to an image with Graphviz's ``dot``."""
    import shutil
    import subprocess

    if fmt not in IMAGE_FORMATS:
        raise RenderError(f"format {fmt!r}: expected one of {', '.join(IMAGE_FORMATS)}")
    exe = shutil.which(dot_command)
    if exe is None:
        raise RenderError(f"Graphviz '{dot_command}' is not installed: run "
                          "scripts/install-netutils.sh (or apt-get install graphviz), "
                          "or use --format dot")
    r = subprocess.run([exe, f"-T{fmt}"], input=dot.encode(), capture_output=True)
    if r.returncode:
        raise RenderError(f"dot -T{fmt} failed: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def running_link_counters(pid: int) -> dict[str, dict]:
    """Link counters of running process ``pid`` (link spec -> counters),
    for ``to_dot``. Raises RenderError when no such process publishes."""
    from snabbpy.core import registry

    if pid not in registry.list_processes():
        raise RenderError(f"--pid {pid}: not a running snabbpy process (see snabbpy ps)")
    return registry.read_process(pid)["links"]
