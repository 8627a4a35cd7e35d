"""The engine's own counters in shared memory (``<process dir>/engine``),
for `snabbpy exporter`: breaths, naps and the packet lifetime counts.

The engine keeps them as Python ints and copies them here now and then
(every ``SYNC_BREATHS`` breaths, idle or busy, and when ``main()``
returns), so publishing costs a graph one test per breath."""

from __future__ import annotations

from pathlib import Path

from snabbpy.core.counter import Counters

#: Breaths between two copies while the graph is busy (a power of two).
SYNC_BREATHS = 128

#: The packet lifetime counts copied as they are, then the engine's own.
PACKET_COUNTERS = ("allocated", "freed", "freed_bytes", "created", "nfree")
NAMES = ("breaths", "naps", "nap_us", *PACKET_COUNTERS)

#: Of NAMES, the ones that go up and down (levels, not counts).
GAUGES = ("nfree",)

#: Name of the counter file in a process's counter directory.
FILE_NAME = "engine"


class EngineStats:
    """The engine counter file of this process."""

    def __init__(self, directory: Path) -> None:
        self.counters = Counters(NAMES, directory / FILE_NAME)

    def sync(self, breaths: int, naps: int, nap_us: int) -> None:
        """Copies the engine's counts and the packet counts to shared memory."""
        from snabbpy.core import packet  # not at import: the CLI loads this module to
        # list commands, and packet memory is reserved only for a command that runs
        c = self.counters
        c["breaths"], c["naps"], c["nap_us"] = breaths, naps, nap_us
        s = packet.stats()
        for name in PACKET_COUNTERS:
            c[name] = s[name]

    def close(self) -> None:
        """Removes the file."""
        self.counters.close()
