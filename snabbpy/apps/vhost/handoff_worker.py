"""The worker's end of the queue handoff: the rings of one lent queue pair,
run by this process from what the owner sends (no I/O here).

``LentPair.handle(msg)`` acts on one message (``handoff.py``) and returns
the answer to send, if any. It maps the guest memory itself from the fds,
runs its own ``struct dr_queue`` for each ring and counts into ``counters``
(a one-queue device's ``rxq_*``/``txq_*``). Messages out of order — a ring
before the memory, new memory while a ring runs, a ring of another pair, a
stop of a ring not running — raise HandoffError and change nothing.
"""

from __future__ import annotations

from snabbpy.lib.vhost_user import MemoryRegion, VringAddr

from .handoff import HandoffError, close_fds
from .memory import GuestMemory, GuestMemoryError
from .queue_pair import QueuePair, ring_stats
from .vring import Vring, VringError


class LentPair:
    """Queue pair ``index`` served here; ``pair`` is its data path."""

    def __init__(self, index: int, counters) -> None:
        rx_stats, tx_stats = ring_stats(counters, 0)
        self.index = index
        self.memory: GuestMemory | None = None
        self.active = True
        self.pair = QueuePair(index, Vring(2 * index, rx_stats), Vring(2 * index + 1, tx_stats),
                              counters, named_as=0)

    def _ring(self, index: int) -> Vring:
        p = self.pair
        if index == p.rx.index:
            return p.rx
        if index == p.tx.index:
            return p.tx
        raise HandoffError(f"ring {index} is not one of pair {self.index} "
                           f"(rings {p.rx.index} and {p.tx.index})")

    def handle(self, msg: dict) -> dict | None:
        """Acts on ``msg`` (its fds in ``msg["fds"]``, taken or closed);
        returns the answer for the owner, or None."""
        fds = msg.get("fds", [])
        op = msg["op"]
        try:
            handler = getattr(self, f"_on_{op}", None)
            if handler is None:
                raise HandoffError(f"{op}: not a message for a worker")
            return handler(msg, fds)
        except HandoffError:
            close_fds(fds)
            raise

    def _on_memory(self, msg: dict, fds: list[int]) -> None:
        running = [v.index for v in (self.pair.rx, self.pair.tx) if v.started]
        if running:
            raise HandoffError(f"memory: ring {running[0]} still runs (stop it first)")
        regions = [MemoryRegion(*r) for r in msg["regions"]]
        try:
            memory = GuestMemory(regions, fds)
        except GuestMemoryError as e:
            raise HandoffError(f"memory: {e}") from None
        close_fds(fds)
        if self.memory is not None:
            self.memory.close()
        self.memory = memory

    def _on_ring(self, msg: dict, fds: list[int]) -> None:
        vring = self._ring(msg["index"])
        if self.memory is None:
            raise HandoffError(f"ring {vring.index}: no memory yet")
        if vring.started:
            raise HandoffError(f"ring {vring.index}: already runs (stop it first)")
        if msg["base"] > 0xFFFF:
            raise HandoffError(f"ring {vring.index}: base {msg['base']} is not a 16-bit index")
        it = iter(fds)
        vring.set_kick(next(it) if msg["kick"] else None)
        vring.set_call(next(it) if msg["call"] else None)
        fds.clear()  # the ring's now: closed by its reset, not by handle()
        vring.num, vring.base, vring.enabled = msg["num"], msg["base"], msg["enabled"]
        vring.addr = VringAddr(vring.index, 0, msg["desc"], msg["used"], msg["avail"])
        try:
            vring.start(self.memory, msg["features"])
        except VringError as e:
            vring.reset()
            raise HandoffError(str(e)) from None

    def _on_enable(self, msg: dict, fds: list[int]) -> None:
        self._ring(msg["index"]).enabled = msg["enabled"]

    def _on_active(self, msg: dict, fds: list[int]) -> None:
        self.active = msg["active"]

    def _on_stop(self, msg: dict, fds: list[int]) -> dict:
        vring = self._ring(msg["index"])
        if not vring.started:
            raise HandoffError(f"stop: ring {vring.index} is not running")
        return {"op": "stopped", "index": vring.index, "base": vring.stop()}

    def _on_reset(self, msg: dict, fds: list[int]) -> dict:
        self.reset()
        return {"op": "reset_done"}

    def leave(self) -> dict:
        """Stops serving: stops the rings, unmaps; the ``bye`` for the owner."""
        rings = [[v.index, v.stop()] for v in (self.pair.rx, self.pair.tx) if v.started]
        self.reset()
        return {"op": "bye", "rings": rings}

    def reset(self) -> None:
        """Stops both rings, closes their fds, unmaps the memory."""
        self.pair.rx.reset()
        self.pair.tx.reset()
        if self.memory is not None:
            self.memory.close()
            self.memory = None
        self.active = True
