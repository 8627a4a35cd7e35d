"""One virtqueue of the device as the vhost-user protocol sets it up.

A ``Vring`` collects what the frontend sends for one ring index (size,
addresses, base, kick and call eventfds, enable) and starts the C device
ring (``device_ring.c``) once it has all of it; GET_VRING_BASE stops it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from snabbpy.core.native import ffi, lib
from snabbpy.lib.vhost_user import VringAddr
from snabbpy.lib.virtio.constants import Feature, has_feature

from .memory import GuestMemory
from .offloads import offload_flags

#: Counter names of ``struct dr_stats``, in its order.
STATS = tuple(name for name, _ in ffi.typeof("struct dr_stats").fields)

_START_ERRORS = {
    lib.DR_E_SIZE: "queue size is not a power of two up to 32768",
    lib.DR_E_DESC: "descriptor table is not in guest memory or not 16-byte aligned",
    lib.DR_E_AVAIL: "available ring is not in guest memory or not 2-byte aligned",
    lib.DR_E_USED: "used ring is not in guest memory or not 4-byte aligned",
}


class VringError(ValueError):
    """A ring set up so that it cannot run; the message says why."""


def ring_flags(features: int) -> int:
    """The ``DR_F_*`` flags for negotiated virtio ``features``."""
    flags = 0
    for bit, flag in ((Feature.NET_MRG_RXBUF, lib.DR_F_MRG_RXBUF),
                      (Feature.VERSION_1, lib.DR_F_VERSION_1),
                      (Feature.RING_INDIRECT_DESC, lib.DR_F_INDIRECT),
                      (Feature.RING_EVENT_IDX, lib.DR_F_EVENT_IDX)):
        if has_feature(features, bit):
            flags |= flag
    return flags | offload_flags(features)


def _close(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


@dataclass
class Vring:
    """Ring ``index``: its setup, its fds and its C state ``q``.

    ``stats`` is the ``struct dr_stats *`` its counters go to."""

    index: int
    stats: object
    num: int = 0
    addr: VringAddr | None = None
    base: int = 0
    kicked: bool = False  # SET_VRING_KICK seen (with an fd or NOFD: polling)
    kickfd: int | None = None
    callfd: int | None = None
    enabled: bool = False
    q: object = field(default_factory=lambda: ffi.new("struct dr_queue *"))

    @property
    def started(self) -> bool:
        """True while the C ring runs."""
        return bool(self.q.ready)

    @property
    def running(self) -> bool:
        """Started and enabled: packets flow."""
        return bool(self.q.ready) and self.enabled

    def can_start(self) -> bool:
        """Everything needed to start has arrived."""
        return bool(self.num) and self.addr is not None and self.kicked

    def start(self, memory: GuestMemory | None, features: int) -> None:
        """Starts (or restarts, keeping its place) the C ring; VringError
        when the frontend's setup cannot run."""
        if memory is None:
            raise VringError(f"ring {self.index}: no memory table yet")
        if self.started:
            self.base = lib.dr_queue_stop(self.q)
        a = self.addr
        err = lib.dr_queue_start(self.q, memory.c, self.stats, self.num, a.desc_user_addr,
                                 a.avail_user_addr, a.used_user_addr, self.base,
                                 ring_flags(features))
        if err:
            raise VringError(f"ring {self.index}: {_START_ERRORS.get(err, err)}")

    def set_stats(self, stats: object) -> None:
        """Counts into ``stats`` (a ``struct dr_stats *``) from now on,
        running or not (a queue pair lent to another app)."""
        self.stats = self.q.stats = stats

    def stop(self) -> int:
        """Stops the ring (GET_VRING_BASE); returns where to resume."""
        if self.started:
            self.base = lib.dr_queue_stop(self.q)
        self.kicked = False
        _close(self.kickfd)
        self.kickfd = None
        return self.base

    def set_kick(self, fd: int | None) -> None:
        """Takes the kick eventfd (None: the frontend will not kick)."""
        _close(self.kickfd)
        self.kickfd, self.kicked = fd, True

    def set_call(self, fd: int | None) -> None:
        """Takes the call eventfd (None: the frontend polls the used ring)."""
        _close(self.callfd)
        self.callfd = fd

    def interrupt(self) -> bool:
        """Signals the call eventfd if the last batch asked for it; True if done."""
        if not self.q.interrupt or self.callfd is None:
            return False
        try:
            os.eventfd_write(self.callfd, 1)
        except BlockingIOError:
            pass  # the counter is saturated: the guest has a call pending anyway
        return True

    def reset(self) -> None:
        """Forgets everything (disconnect): stops, closes both fds."""
        self.stop()
        self.set_call(None)
        self.num, self.addr, self.base, self.enabled, self.kicked = 0, None, 0, False, False

    def counters(self) -> dict[str, int]:
        """This ring's ``dr_stats`` by name."""
        return {name: getattr(self.stats, name) for name in STATS}
