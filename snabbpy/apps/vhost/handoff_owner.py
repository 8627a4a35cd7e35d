"""The owner's end of the queue handoff: the VhostUser keeps the socket and
the device, and each pair lent to another process follows the device's rings.

``RemoteQueues`` is told of each request before (``before``) and after
(``after``) the device handles it. Before a request that stops or restarts
rings (GET_VRING_BASE, SET_MEM_TABLE, SET_FEATURES, SET_VRING_ADDR/KICK/
CALL, RESET_OWNER) it asks the worker to stop the rings concerned and puts
the position the worker hands back (a split ring's avail index, a packed
ring's 32-bit state with its wrap counters) into the owner's ring, so the device
answers GET_VRING_BASE (or restarts) from the true position. After each
request, and each tick, ``sync`` sends what changed: the memory table (fds
kept for that), the rings the device has started (size, addresses, base,
features, kick/call eventfds), enable bits, the pair's VQ_PAIRS_SET gate.
The owner's own ``struct dr_queue`` of a lent ring is started but never
polled: only the worker moves packets.

Links are anything with ``send(msg, fds)``/``receive(timeout)``/``close()``
(``handoff_socket.Link``; tests use fakes). A worker that is gone or does
not answer is counted (``handoff_lost``) and forgotten; an answer out of
order or an ``error`` from it is counted (``handoff_errors``).
"""

from __future__ import annotations

import logging
import os

from snabbpy.lib.vhost_user import Message, Request

from .handoff import HandoffError, close_fds
from .handoff_socket import PeerGone
from .vring import VringError

log = logging.getLogger(__name__)

#: Seconds the owner waits for a worker's answer before giving up on it.
ANSWER_SECONDS = 5.0
#: Requests that stop or restart every ring.
ALL_RINGS = frozenset({Request.SET_MEM_TABLE, Request.SET_FEATURES, Request.RESET_OWNER})
#: Requests that stop or restart the ring they name.
ONE_RING = frozenset({Request.GET_VRING_BASE, Request.SET_VRING_ADDR, Request.SET_VRING_KICK,
                      Request.SET_VRING_CALL})


class _Remote:
    """One lent pair's worker, and what it was last sent."""

    def __init__(self, pair: int, link) -> None:
        self.pair, self.link = pair, link
        self.memory = None            # the GuestMemory whose table it has
        self.running: set[int] = set()
        self.enabled: dict[int, bool] = {}
        self.active: bool | None = None


class RemoteQueues:
    """The pairs of ``device`` that ``lendable`` lists, served by other
    processes that connect through ``listener`` (None: only ``adopt``)."""

    def __init__(self, device, counters, lendable: set[int], listener=None,
                 answer_seconds: float = ANSWER_SECONDS) -> None:
        self.device, self.counters, self.lendable = device, counters, set(lendable)
        self.listener = listener
        self.answer_seconds = answer_seconds
        self.remotes: dict[int, _Remote] = {}
        self.pending: list = []            # links that have not said hello yet
        self.local: set[int] = set()       # pairs lent to an app of this process
        self.memory_fds: list[int] = []    # dups of the current table's fds
        self.memory_of = None              # the GuestMemory they belong to
        self._incoming: list[int] | None = None
        self.last_error = ""

    # -- connections ---------------------------------------------------------

    def poll(self) -> None:
        """Accepts workers, reads their hellos and anything they send."""
        while self.listener is not None:
            try:
                link = self.listener.poll()
            except HandoffError as e:
                self._error(str(e))
                continue
            if link is None:
                break
            self.pending.append(link)
        for link in list(self.pending):
            self._greet(link)
        for remote in list(self.remotes.values()):
            try:
                msg = remote.link.receive(0)
            except PeerGone:
                self._lost(remote, "closed its handoff link")
                continue
            except HandoffError as e:
                self._error(f"pair {remote.pair}: {e}")
                continue
            if msg is not None and msg["op"] == "bye":
                self._bye(remote, msg)
            elif msg is not None:
                self._unexpected(remote, msg)
        self.sync()

    def _greet(self, link) -> None:
        try:
            msg = link.receive(0)
        except (PeerGone, HandoffError) as e:
            self.pending.remove(link)
            link.close()
            if isinstance(e, HandoffError):
                self._error(str(e))
            return
        if msg is None:
            return
        self.pending.remove(link)
        close_fds(msg.pop("fds", []))
        try:
            self.adopt(msg, link)
        except HandoffError as e:
            self._error(str(e))
            try:
                link.send({"op": "error", "error": str(e)})
            except PeerGone:
                pass
            link.close()

    def adopt(self, hello: dict, link) -> None:
        """Takes ``link`` as the server of the pair ``hello`` names;
        HandoffError when that pair cannot be lent to it."""
        if hello["op"] != "hello":
            raise HandoffError(f"{hello['op']}: a worker must first say hello")
        k = hello["pair"]
        if k not in self.lendable:
            raise HandoffError(f"pair {k} cannot be lent (lendable: "
                               f"{', '.join(map(str, sorted(self.lendable))) or 'none'})")
        if k in self.local or k in self.remotes:
            raise HandoffError(f"pair {k} is served by another app already")
        self.remotes[k] = _Remote(k, link)
        log.info("pair %d: served by another process", k)
        self.sync()

    def _unexpected(self, remote: _Remote, msg: dict) -> None:
        close_fds(msg.pop("fds", []))
        text = msg.get("error") if msg["op"] == "error" else f"{msg['op']} out of order"
        self._error(f"pair {remote.pair}: worker says: {text}")

    def _bye(self, remote: _Remote, msg: dict) -> None:
        """The worker stops serving (its app stopped): takes the positions
        of the rings it ran and forgets it, nothing lost."""
        for index, base in msg["rings"]:
            if index in (2 * remote.pair, 2 * remote.pair + 1):
                self._take_base(remote, index, base)
        log.info("pair %d: its worker left", remote.pair)
        remote.link.close()
        self.remotes.pop(remote.pair, None)

    def _take_base(self, remote: _Remote, index: int, base: int) -> None:
        """Ring ``index`` resumes where the worker stopped it: ``base``, an
        avail index (split) or a 32-bit ring state with both wrap counters
        (packed); a base that cannot be is counted and not taken."""
        vring = self.device.vrings[index]
        try:
            if vring.started:
                vring.resume_at(base)
            elif base > 0xFFFFFFFF:
                raise VringError(f"ring {index}: base {base} is more than 32 bits")
            else:
                vring.base = base
        except VringError as e:
            self._error(f"pair {remote.pair}: stopped {e}")

    def _error(self, text: str) -> None:
        self.counters.add("handoff_errors")
        self.last_error = text
        log.warning("queue handoff: %s", text)

    def _lost(self, remote: _Remote, why: str) -> None:
        self.counters.add("handoff_lost")
        self.last_error = f"pair {remote.pair}: worker {why}"
        log.warning("queue handoff: %s", self.last_error)
        remote.link.close()
        self.remotes.pop(remote.pair, None)

    # -- around each request -------------------------------------------------

    def before(self, msg: Message) -> None:
        """Stops, in the workers, the rings ``msg`` will stop or restart."""
        if msg.request == Request.SET_MEM_TABLE:
            self._incoming = [os.dup(fd) for fd in msg.fds]
        if msg.request in ALL_RINGS:
            rings = None
        elif msg.request in ONE_RING:
            rings = {msg.payload.index}
        else:
            return
        for remote in list(self.remotes.values()):
            for index in sorted(remote.running):
                if rings is None or index in rings:
                    self._stop(remote, index)

    def after(self) -> None:
        """Keeps the fds of a memory table the device took; sends the workers
        what changed."""
        if self._incoming is not None:
            if self.device.memory is not None and self.device.memory is not self.memory_of:
                close_fds(self.memory_fds)
                self.memory_fds, self.memory_of = self._incoming, self.device.memory
            else:
                close_fds(self._incoming)
            self._incoming = None
        self.sync()

    def _ask(self, remote: _Remote, msg: dict, answer: str) -> dict | None:
        """Sends ``msg`` and waits for ``answer``; None (and the worker
        forgotten or the error counted) when it does not come."""
        try:
            remote.link.send(msg)
            while True:
                reply = remote.link.receive(self.answer_seconds)
                if reply is None:
                    self._lost(remote, f"did not answer {msg['op']} in "
                                       f"{self.answer_seconds:g} s")
                    return None
                if reply["op"] == answer:
                    return reply
                if reply["op"] == "bye":
                    self._bye(remote, reply)
                    return None
                self._unexpected(remote, reply)
                if reply["op"] == "error":
                    return None
        except PeerGone:
            self._lost(remote, f"gone before answering {msg['op']}")
        except HandoffError as e:
            self._error(f"pair {remote.pair}: {e}")
        return None

    def _stop(self, remote: _Remote, index: int) -> None:
        remote.running.discard(index)
        reply = self._ask(remote, {"op": "stop", "index": index}, "stopped")
        if reply is None:
            return
        if reply["index"] != index:
            self._error(f"pair {remote.pair}: stopped ring {reply['index']} at "
                        f"{reply['base']}, asked for ring {index}")
            return
        self._take_base(remote, index, reply["base"])

    def sync(self) -> None:
        """Sends each worker what changed since it was last sent."""
        for remote in list(self.remotes.values()):
            try:
                self._sync(remote)
            except PeerGone:
                self._lost(remote, "gone")

    def _sync(self, remote: _Remote) -> None:
        d = self.device
        rings = (d.vrings[2 * remote.pair], d.vrings[2 * remote.pair + 1])
        if d.memory is not None and d.memory is self.memory_of and remote.memory is not d.memory:
            for index in sorted(remote.running):
                self._stop(remote, index)
            if remote.pair not in self.remotes:
                return
            regions = [[r.guest_phys_addr, r.memory_size, r.userspace_addr, r.mmap_offset]
                       for r in d.memory.regions]
            remote.link.send({"op": "memory", "regions": regions}, self.memory_fds)
            remote.memory = d.memory
        for v in rings:
            if v.started and v.index not in remote.running and remote.memory is d.memory:
                fds = [fd for fd in (v.kickfd, v.callfd) if fd is not None]
                a = v.addr
                remote.link.send({"op": "ring", "index": v.index, "num": v.q.size,
                                  "desc": a.desc_user_addr, "avail": a.avail_user_addr,
                                  "used": a.used_user_addr, "base": v.q.last_avail,
                                  "features": d.features, "enabled": v.enabled,
                                  "kick": v.kickfd is not None, "call": v.callfd is not None},
                                 fds)
                remote.running.add(v.index)
                remote.enabled[v.index] = v.enabled
            elif v.index in remote.running and remote.enabled.get(v.index) != v.enabled:
                remote.link.send({"op": "enable", "index": v.index, "enabled": v.enabled})
                remote.enabled[v.index] = v.enabled
        active = d.pair_active(remote.pair)
        if remote.active != active:
            remote.link.send({"op": "active", "active": active})
            remote.active = active

    def reset(self) -> None:
        """The frontend is gone: each worker stops its rings (handing back
        their positions) and unmaps the memory."""
        for remote in list(self.remotes.values()):
            for index in sorted(remote.running):
                self._stop(remote, index)
            if remote.pair in self.remotes and self._ask(remote, {"op": "reset"}, "reset_done"):
                remote.memory, remote.active = None, None
                remote.enabled.clear()
        close_fds(self.memory_fds)
        self.memory_fds, self.memory_of = [], None

    def close(self) -> None:
        """Closes every link and the listener."""
        for link in self.pending:
            link.close()
        for remote in self.remotes.values():
            remote.link.close()
        self.pending, self.remotes = [], {}
        close_fds(self.memory_fds)
        self.memory_fds, self.memory_of = [], None
        if self.listener is not None:
            self.listener.close()

    def describe(self) -> list[str]:
        """One line per pair served elsewhere, for the owner's report."""
        return [f"  pair {k}: served by another process, rings running: "
                f"{', '.join(map(str, sorted(r.running))) or 'none'}"
                for k, r in sorted(self.remotes.items())]
