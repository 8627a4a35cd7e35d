"""VhostQueue: one queue pair of a VhostUser device, served by its own app.

The VhostUser app with ``socket_path`` owns the socket and the device (every
request, the memory, the rings' setup, the control queue); the pairs it does
not ``serve`` itself are lent to one VhostQueue each, which moves their
packets: ``input`` to the guest's receive ring 2k, its transmit ring 2k+1
to ``output``. Its counters are a one-queue VhostUser's (``rxq_*``,
``txq_*``), because the ring code counts straight into them.

In one process the owner is found by ``socket_path`` (``owners``). When
no VhostUser of this process owns it (the VhostQueue is on another worker)
the pair is served through the queue handoff: the VhostQueue connects to
the owner's handoff socket (``handoff_socket.py``), says which pair it
serves, and runs that pair's rings from what the owner sends
(``handoff_worker.LentPair``), mapping the guest memory itself.
"""

from __future__ import annotations

import time

from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import ffi

from .handoff import HandoffError
from .handoff_socket import Link, PeerGone, connect, handoff_path
from .handoff_worker import LentPair
from .queue_pair import QueuePair, pair_counters

#: Seconds between two tries to reach the owner's handoff socket.
RETRY_SECONDS = 0.1
#: VhostUser apps of this process by socket path, for VhostQueue to find.
owners: dict[str, object] = {}


class VhostQueue(App):
    """Queue pair ``queue`` of the VhostUser that owns ``socket_path``."""

    inputs, outputs = ("input",), ("output",)
    config = {
        "socket_path": Param(str, doc="socket_path of the VhostUser that owns the device"),
        "queue": Param(int, doc="queue pair served here (rings 2*queue, 2*queue+1)"),
    }
    #: handoff_*: links made to an owner in another process, its messages
    #: refused, and (a level, not a count) the rings running here from it.
    counters = pair_counters(0) + ("handoff_connects", "handoff_errors", "handoff_rings_running")

    def __init__(self, conf: dict) -> None:
        self.conf = conf
        if conf["queue"] < 0:
            raise ConfigError(f"queue: {conf['queue']} is not a queue pair")
        self.owner = None
        self.pair: QueuePair | None = None
        #: served through the handoff: the pair's rings, the link to the owner
        self.lent: LentPair | None = None
        self.handoff: Link | None = None
        self.last_error = ""
        self.refused = False     # the owner refused this pair: no more tries
        self._next_try = 0.0

    def link(self) -> None:
        path, k = self.conf["socket_path"], self.conf["queue"]
        owner = owners.get(path)
        if owner is None:
            if self.lent is None:
                self._give_back()
                self.lent = LentPair(k, self.stats)
                self.pair = self.lent.pair
        elif owner is not self.owner:
            self._give_back()
            self.pair = owner.lend(k, self)
            self.owner = owner
        i, o = self.input.get("input"), self.output.get("output")
        self.pair.link(i.c if i is not None else ffi.NULL, o.c if o is not None else ffi.NULL)

    def pull(self) -> None:
        if self.pair is not None:
            self.pair.pull()

    def push(self) -> None:
        if self.lent is not None:
            self.pair.push(self.lent.active)
        elif self.pair is not None:
            self.pair.push(self.owner.device.pair_active(self.pair.index))

    # -- the handoff: the owner is another process ----------------------------

    def tick(self) -> None:
        if self.lent is None or self.refused:
            return
        if self.handoff is None:
            now = time.monotonic()
            if now < self._next_try:
                return
            self._next_try = now + RETRY_SECONDS
            self.handoff = connect(handoff_path(self.conf["socket_path"]))
            if self.handoff is None:
                return
            self.stats.add("handoff_connects")
            try:
                self.handoff.send({"op": "hello", "pair": self.lent.index})
            except PeerGone:
                self._owner_gone()
                return
        try:
            while self.handoff is not None:
                msg = self.handoff.receive(0)
                if msg is None:
                    break
                self._obey(msg)
        except PeerGone:
            self._owner_gone()

    def _obey(self, msg: dict) -> None:
        if msg["op"] == "error":
            self._refused(f"the owner says: {msg['error']}")
            self.refused = True
            self._owner_gone()
            return
        try:
            answer = self.lent.handle(msg)
        except HandoffError as e:
            self._refused(str(e))
            answer = {"op": "error", "error": str(e)}
        self._count_running()
        if answer is not None:
            self.handoff.send(answer)

    def _count_running(self) -> None:
        p = self.lent.pair
        self.stats["handoff_rings_running"] = p.rx.running + p.tx.running

    def _refused(self, text: str) -> None:
        self.stats.add("handoff_errors")
        self.last_error = text

    def _owner_gone(self) -> None:
        """The owner closed the link: stop the rings, try again later."""
        self.lent.reset()
        self._count_running()
        if self.handoff is not None:
            self.handoff.close()
            self.handoff = None

    def _end_handoff(self) -> None:
        """Stops serving through the handoff: the owner gets the rings'
        positions (``bye``) and the link is closed."""
        if self.lent is None:
            return
        bye = self.lent.leave()
        if self.handoff is not None:
            try:
                self.handoff.send(bye)
            except PeerGone:
                pass
        self._owner_gone()
        self.lent = self.pair = None

    def report(self) -> str:
        """Which device and pair, and its rings."""
        path = self.conf["socket_path"]
        if self.pair is None:
            return f"queue pair {self.conf['queue']} of {path}: not lent"
        p = self.pair
        rings = f"rx {p.state(p.rx)}, tx {p.state(p.tx)}"
        if self.lent is not None:
            where = "connected" if self.handoff is not None else "waiting for"
            text = f"queue pair {p.index} of {path}, {where} its owner in another process: {rings}"
            return text + (f"; last error: {self.last_error}" if self.last_error else "")
        return f"queue pair {p.index} of {self.owner.name} ({path}): {rings}"

    def _give_back(self) -> None:
        self._end_handoff()
        if self.owner is not None:
            self.owner.give_back(self.pair.index, self)
        self.owner = self.pair = None

    def stop(self) -> None:
        self._give_back()
