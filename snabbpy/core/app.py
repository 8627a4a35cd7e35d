"""The app contract, written once.

An app is a Python class. The engine makes one instance per app in the
graph and calls its methods; every method is optional:

``__init__(self, conf)``
    Called with the validated configuration (a dict: every declared key,
    defaults filled in). Before it runs the engine has set ``self.name``
    (the app's name in the graph) and ``self.stats`` (the app's counters).
``pull()``
    Brings packets into the graph (from a device, a file, a generator):
    called first in every breath, on every app that has it.
``push()``
    Moves packets from ``self.input`` links on to ``self.output`` links;
    called after all pulls, in the order of the links (upstream first).
``tick()``
    Called ``tick_hz`` times a second (default 1000): housekeeping.
``link()``
    Called when the app's ports changed; cache links here.
``reconfig(conf)``
    Called with a new configuration; without it the app is restarted.
``report()``
    Returns (or prints) a text about the app, for the final report.
``stop()``
    Called when the app leaves the graph: release what it holds, free the
    packets it owns. The engine counts each app's packets (allocated,
    received, sent, freed: ``core/accounting.py``); those an app still has
    once it has stopped are reported as lost at the end of the run.

An app that pulls from a finite input sets ``self.done = True`` once it is
exhausted; when every pulling app of a graph is done and the links are
empty, ``snabbpy run`` stops (``Engine.finished()``).

``self.input`` and ``self.output`` map port names to ``Link`` objects, in
the order the links were configured. A packet received from an input is
owned by the app until it is transmitted on an output or freed.

An app declares its ports in the class attributes ``inputs`` and
``outputs``: a tuple of port names, or ``ANY`` for any number of ports of
any name (Tee, Split, Join, Sink). ``config.check`` refuses a link to a
port the app does not have, naming the ports it has. A class that declares
nothing (None, the default here, kept for older user apps) takes any port;
every built-in app declares its ports.

Whether a graph has ended is part of the contract too: ``producing()``
returns True while the app may still send packets it was not given (a
live device, a generator, a Repeater that has recorded its input). When
an app has no ``producing()``, it is taken to produce while it has
``pull()`` and is not ``done``. The graph ends by itself (``snabbpy run``
with no ``--duration``) when no app is producing and every link is empty.

What the engine does when a breath moved no packet (idle) depends on the
apps too. An app that only moves what its links give it, or generates only
while an output has room, and looks at nothing outside the graph (no
device, socket, file or clock) says so with ``links_only = True`` (Sink,
Source, Tee, RSS, the interlink ends...). Without it the engine assumes the
app may poll the world and naps at most 100 us. When every app of a
process is ``links_only`` and the process ends interlinks, nothing can
change until another process moves something, so the engine sleeps until
then (or its next timer). An app at the end of an interlink lists what to
wait for in ``wake_on()``: ``(ring, interlink.RECORDS or ROOM, link)``
entries (``snabbpy/apps/interlink``).

An app that parses frames of a link layer says which in ``link_types``
(pcap link types; ``(1,)`` is Ethernet), and an app that knows the link
type of what it sends once started answers ``link_type()`` (a PcapReader
of a classic capture): a link from one to the other that cannot match is
refused when the graph is configured (``core/linktypes.py``).

An app that reads or writes files says which with a classmethod
``files(conf)`` returning ``("r" | "w", path)`` pairs: a FIFO to read and
two apps on one file of which one writes are refused at load.

An app declares its configuration keys in the class attribute ``config``
(name -> ``Param``) and its counters in ``counters`` (a tuple of names; an
app whose counters depend on its configuration, one block per queue say,
also has a classmethod ``counters_for(conf)`` returning the names for
``conf``, which the engine uses instead: see ``counter_names``). An
app that drives a device which needs a particular kind of DMA memory (a PCI
device wants hugepages with physical addresses) says so with a classmethod
``dma_backend(conf)`` returning a backend (or None); the engine switches
to it before any app of the graph starts.
"""

from __future__ import annotations

from typing import Any, ClassVar

from snabbpy.core.config import ANY, Param
from snabbpy.core.counter import Counters

__all__ = ["ANY", "App", "Param", "counter_names"]


def counter_names(cls: type, conf: dict[str, Any]) -> tuple[str, ...]:
    """The counters an app of class ``cls`` has with configuration ``conf``:
    ``cls.counters_for(conf)`` when it has one, else ``cls.counters``."""
    names = getattr(cls, "counters_for", None)
    return tuple(names(conf) if names else getattr(cls, "counters", ()))


class App:
    """Convenient base class for apps (the engine does not require it)."""

    config: ClassVar[dict[str, Param]] = {}
    counters: ClassVar[tuple[str, ...]] = ()
    inputs: ClassVar[tuple[str, ...] | str | None] = None
    outputs: ClassVar[tuple[str, ...] | str | None] = None
    links_only: ClassVar[bool] = False  # see the module's docstring

    name: str
    stats: Counters

    def __new__(cls, *args: Any, **kwargs: Any) -> App:
        self = super().__new__(cls)
        # Defaults for an app made by hand; the engine overrides both.
        self.name = cls.__name__
        self.stats = Counters(cls.counters)
        self.input = {}
        self.output = {}
        return self

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        self.conf = conf or {}
