"""VhostQueue: one queue pair of a VhostUser device, served by its own app.

The VhostUser app with ``socket_path`` owns the socket and the device (every
request, the memory, the rings' setup, the control queue); the pairs it does
not ``serve`` itself are lent to one VhostQueue each, which moves their
packets: ``input`` to the guest's receive ring 2k, its transmit ring 2k+1
to ``output``. Its counters are a one-queue VhostUser's (``rxq_*``,
``txq_*``), because the ring code counts straight into them.

In one process the owner is found by ``socket_path`` (``owners``). A
VhostQueue in another worker would get the same things over a handoff
channel instead (see the README: "Serving queue pairs from other workers").
"""

from __future__ import annotations

from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import ffi

from .queue_pair import QueuePair, pair_counters

#: VhostUser apps of this process by socket path, for VhostQueue to find.
owners: dict[str, object] = {}


class VhostQueue(App):
    """Queue pair ``queue`` of the VhostUser that owns ``socket_path``."""

    inputs, outputs = ("input",), ("output",)
    config = {
        "socket_path": Param(str, doc="socket_path of the VhostUser that owns the device"),
        "queue": Param(int, doc="queue pair served here (rings 2*queue, 2*queue+1)"),
    }
    counters = pair_counters(0)

    def __init__(self, conf: dict) -> None:
        self.conf = conf
        self.owner = None
        self.pair: QueuePair | None = None

    def link(self) -> None:
        path, k = self.conf["socket_path"], self.conf["queue"]
        owner = owners.get(path)
        if owner is None:
            raise ConfigError(f"socket_path: no VhostUser owns {path!r} in this process "
                              "(a VhostQueue in another worker needs the queue handoff, "
                              "see apps/vhost/README.md)")
        if owner is not self.owner:
            self._give_back()
            self.pair = owner.lend(k, self)
            self.owner = owner
        i, o = self.input.get("input"), self.output.get("output")
        self.pair.link(i.c if i is not None else ffi.NULL, o.c if o is not None else ffi.NULL)

    def pull(self) -> None:
        if self.pair is not None:
            self.pair.pull()

    def push(self) -> None:
        if self.pair is not None:
            self.pair.push(self.owner.device.pair_active(self.pair.index))

    def report(self) -> str:
        """Which device and pair, and its rings."""
        if self.pair is None:
            return f"queue pair {self.conf['queue']} of {self.conf['socket_path']}: not lent"
        p = self.pair
        return (f"queue pair {p.index} of {self.owner.name} ({self.conf['socket_path']}): "
                f"rx {p.state(p.rx)}, tx {p.state(p.tx)}")

    def _give_back(self) -> None:
        if self.owner is not None:
            self.owner.give_back(self.pair.index, self)
        self.owner = self.pair = None

    def stop(self) -> None:
        self._give_back()
