"""The Prometheus text exposition format, version 0.0.4: counter readings
in, text out. No I/O, so every rule (names, label escaping, types) is
tested without a socket.

Families (every sample carries ``pid`` and ``process``, and ``worker``
when the process runs part of a graph over workers: ``main`` for the
supervisor; a link that carries an interlink is the link the user wrote,
with ``interlink`` "out" in the sending process and "in" in the
receiving one)::

    snabbpy_link_counter_total{link, from_app, to_app, counter}
    snabbpy_app_counter_total{app, counter}
    snabbpy_engine_counter_total{counter}
    snabbpy_engine_gauge{counter}          (gauge: levels such as nfree)
    snabbpy_process_start_time_seconds     (gauge)
    snabbpy_processes                      (gauge, no process labels)
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

#: The Content-Type of this format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass
class ProcessCounters:
    """One reading of one process: ``links`` {spec: {counter: value}},
    ``apps`` {app: {counter: value}}, ``engine`` {counter: value} and
    ``engine_gauges`` {name: value} (levels, not counts); in a graph over
    workers, the ``worker`` it is and its ``interlinks`` (link -> side)."""

    pid: int
    name: str
    links: dict[str, dict[str, int]] = field(default_factory=dict)
    apps: dict[str, dict[str, int]] = field(default_factory=dict)
    engine: dict[str, int] = field(default_factory=dict)
    engine_gauges: dict[str, float] = field(default_factory=dict)
    started: float | None = None
    worker: str | None = None  # its name in a graph over workers
    interlinks: dict[str, str] = field(default_factory=dict)  # link -> "out" or "in"


@dataclass(frozen=True)
class Family:
    """A metric family: name, type, help text; its samples are
    (labels, value) pairs."""

    name: str
    kind: str
    help: str


LINKS = Family("snabbpy_link_counter_total", "counter",
               "Counters of a link between two apps (rx/tx packets and bytes, txdrop).")
APPS = Family("snabbpy_app_counter_total", "counter", "Counters an app keeps.")
ENGINE = Family("snabbpy_engine_counter_total", "counter",
                "Counters of a process's engine: breaths, naps (idle sleeps), nap_us, "
                "and packets allocated, freed, freed_bytes, created.")
ENGINE_GAUGES = Family("snabbpy_engine_gauge", "gauge",
                       "Levels of a process's engine: nfree (packets on the freelist).")
STARTED = Family("snabbpy_process_start_time_seconds", "gauge",
                 "When the snabbpy process started, in seconds since the epoch.")
PROCESSES = Family("snabbpy_processes", "gauge", "Running snabbpy processes seen by this scrape.")


def check_name(name: str) -> str:
    """``name`` when it is a valid metric name, else ValueError."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a Prometheus metric name")
    return name


def escape_label_value(value: str) -> str:
    """A label value as written between double quotes: backslash, double
    quote and line feed escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """A HELP text: backslash and line feed escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value: integers exactly (uint64 counters lose nothing),
    floats in Python's repr, and the special values as Prometheus spells them."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def format_labels(labels: dict[str, str]) -> str:
    """``{a="x",b="y"}`` (empty string for no labels); a bad label name is
    a ValueError."""
    if not labels:
        return ""
    return "{" + ",".join(f'{_label_name(key)}="{escape_label_value(str(value))}"'
                          for key, value in labels.items()) + "}"


@functools.lru_cache(maxsize=64)
def _label_name(key: str) -> str:
    if not _LABEL.fullmatch(key) or key.startswith("__"):
        raise ValueError(f"{key!r} is not a Prometheus label name")
    return key


def format_family(family: Family, samples: Iterable[tuple[dict[str, str], float]]) -> list[str]:
    """The HELP and TYPE lines of ``family`` and one line per sample; no
    lines at all for a family without samples."""
    name = check_name(family.name)
    lines = [f"{name}{format_labels(labels)} {format_value(value)}" for labels, value in samples]
    if not lines:
        return []
    return [f"# HELP {name} {escape_help(family.help)}", f"# TYPE {name} {family.kind}", *lines]


def link_ends(spec: str) -> tuple[str, str]:
    """The apps at both ends of a link spec ("a.out -> b.in" -> ("a", "b"));
    empty strings for a spec not in that form."""
    source, arrow, target = spec.partition("->")
    if not arrow:
        return "", ""
    return source.strip().partition(".")[0], target.strip().partition(".")[0]


def _samples(processes: list[ProcessCounters], family: Family):
    for p in processes:
        who = {"pid": str(p.pid), "process": p.name}
        if p.worker is not None:
            who["worker"] = p.worker
        if family is LINKS:
            for spec, counters in sorted(p.links.items()):
                src, dst = link_ends(spec)
                side = {"interlink": p.interlinks[spec]} if spec in p.interlinks else {}
                for key, value in counters.items():
                    yield {**who, "link": spec, "from_app": src, "to_app": dst, **side,
                           "counter": key}, value
        elif family is APPS:
            for app, counters in sorted(p.apps.items()):
                for key, value in counters.items():
                    yield {**who, "app": app, "counter": key}, value
        elif family is ENGINE or family is ENGINE_GAUGES:
            for key, value in (p.engine if family is ENGINE else p.engine_gauges).items():
                yield {**who, "counter": key}, value
        elif family is STARTED and p.started is not None:
            yield who, float(p.started)


def render(processes: Iterable[ProcessCounters]) -> str:
    """The whole scrape: every family with samples, ending in a newline."""
    processes = sorted(processes, key=lambda p: p.pid)
    lines = format_family(PROCESSES, [({}, len(processes))])
    for family in (LINKS, APPS, ENGINE, ENGINE_GAUGES, STARTED):
        lines += format_family(family, _samples(processes, family))
    return "\n".join(lines) + "\n"
