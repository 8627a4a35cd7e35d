"""One virtqueue of the device as the vhost-user protocol sets it up.

A ``Vring`` collects what the frontend sends for one ring index (size,
addresses, base, kick and call eventfds, enable) and starts the C device
ring once it has all of it: ``device_ring.c`` for a split ring,
``packed_device.c`` when RING_PACKED is negotiated (then the three
addresses are the ring and the driver and device areas, and the base is
the 32-bit packed ring state with its wrap counters). GET_VRING_BASE
stops it.
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
    lib.DR_E_SIZE: "queue size {num} is not a power of two up to 32768 (a split ring "
                   "needs one)",
    lib.DR_E_DESC: "descriptor table is not in guest memory or not 16-byte aligned",
    lib.DR_E_AVAIL: "available ring is not in guest memory or not 2-byte aligned",
    lib.DR_E_USED: "used ring is not in guest memory or not 4-byte aligned",
    lib.PD_E_BASE: "ring base names a slot beyond the queue size",
}
_PACKED_ERRORS = {
    **_START_ERRORS,
    lib.DR_E_SIZE: "queue size {num} is not in 1..32768",
    lib.DR_E_AVAIL: "driver area is not in guest memory or not 4-byte aligned",
    lib.DR_E_USED: "device area is not in guest memory or not 4-byte aligned",
}


class VringError(ValueError):
    """A ring set up so that it cannot run; the message says why."""


def ring_flags(features: int) -> int:
    """The ``DR_F_*`` flags for negotiated virtio ``features``."""
    flags = 0
    for bit, flag in ((Feature.NET_MRG_RXBUF, lib.DR_F_MRG_RXBUF),
                      (Feature.VERSION_1, lib.DR_F_VERSION_1),
                      (Feature.RING_INDIRECT_DESC, lib.DR_F_INDIRECT),
                      (Feature.RING_EVENT_IDX, lib.DR_F_EVENT_IDX),
                      (Feature.IN_ORDER, lib.PD_F_IN_ORDER)):  # the split ring ignores it
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

    ``stats`` is the ``struct dr_stats *`` its counters go to. ``q`` is
    the running C ring (a ``struct dr_queue *`` or, packed, a
    ``struct pd_queue *``: the same fields ready/broken/interrupt/
    last_avail/used_idx); ``tx_fn``/``rx_fn`` are its C batch calls."""

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
    packed: bool = False
    tx_fn: object = lib.dr_tx
    rx_fn: object = lib.dr_rx
    _split: object = None
    _packed: object = None

    def __post_init__(self) -> None:
        self._split = self.q
        self._packed = ffi.new("struct pd_queue *")

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
            self.base = self._stop_c()
        self.packed = has_feature(features, Feature.RING_PACKED)
        self.q = self._packed if self.packed else self._split
        start = lib.pd_queue_start if self.packed else lib.dr_queue_start
        self.tx_fn, self.rx_fn = (lib.pd_tx, lib.pd_rx) if self.packed else (lib.dr_tx, lib.dr_rx)
        a = self.addr
        err = start(self.q, memory.c, self.stats, self.num, a.desc_user_addr,
                    a.avail_user_addr, a.used_user_addr, self.base, ring_flags(features))
        if err:
            errors = _PACKED_ERRORS if self.packed else _START_ERRORS
            why = errors.get(err, str(err)).format(num=self.num)
            raise VringError(f"ring {self.index}: {why}")

    def _stop_c(self) -> int:
        return (lib.pd_queue_stop if self.packed else lib.dr_queue_stop)(self.q)

    def set_stats(self, stats: object) -> None:
        """Counts into ``stats`` (a ``struct dr_stats *``) from now on,
        running or not (a queue pair lent to another app)."""
        self.stats = self.q.stats = stats

    def resume_at(self, base: int) -> None:
        """Moves a started ring to ``base``, a ring state another process
        stopped it at (a split ring's avail index; a packed ring's 32-bit
        state: slot and wrap counter in each half, both halves equal since
        the device returns every chain in the call that takes it)."""
        why = self.bad_base(base)
        if why:
            raise VringError(why)
        if self.packed:
            self.q.last_avail = self.q.used_idx = self.q.flush_pos = base & 0xFFFF
            self.q.nshadow = 0
        else:
            self.q.last_avail = base

    def bad_base(self, base: int) -> str:
        """Why ``base`` cannot be where this started ring resumes ("" if it
        can): a split ring's is a 16-bit index, a packed ring's a 32-bit
        state whose slots lie inside the ring."""
        if not self.packed:
            return "" if 0 <= base <= 0xFFFF else \
                f"ring {self.index}: base {base} is not a 16-bit index"
        if not 0 <= base <= 0xFFFFFFFF or (base & 0x7FFF) >= self.q.size:
            return f"ring {self.index}: packed ring state {base:#x} names a slot beyond " \
                   f"the queue size {self.q.size}"
        return ""

    def stop(self) -> int:
        """Stops the ring (GET_VRING_BASE); returns where to resume."""
        if self.started:
            self.base = self._stop_c()
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
