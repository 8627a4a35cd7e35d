"""The virtio-net device behind a vhost-user socket: what each request does.

``VhostDevice.handle(message)`` acts on one decoded request (a handler per
request, in ``HANDLERS``) and returns the payload of its reply (``None``
when the request gets only an ack). It owns the mapped memory and the ring
fds but no socket: the app reads and writes the bytes. A request the
device cannot honour raises ``DeviceError`` naming the request and why.

Rings: queue pair k is ring 2k, the guest's receive queue (we write
packets into it), and ring 2k+1, its transmit queue (we take packets from
it). With more than one pair the device offers MQ and a control queue,
ring 2N (``control_queue.py``), where the driver sets how many pairs it uses.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from snabbpy.lib.vhost_user import (
    MemoryTable,
    Message,
    ProtocolFeature,
    Request,
    VringAddr,
    VringState,
)
from snabbpy.lib.vhost_user.constants import VRING_F_LOG
from snabbpy.lib.virtio.constants import Feature, feature_mask, feature_names
from snabbpy.lib.virtio.net_ctrl import MAX_QUEUE_PAIRS
from snabbpy.lib.virtio.ring import MAX_QUEUE_SIZE

from .control_queue import ControlQueue
from .memory import GuestMemory, GuestMemoryError
from .vring import Vring, VringError

RX, TX = 0, 1
#: Everything the device can do; the app may offer less.
SUPPORTED_FEATURES = feature_mask(
    Feature.VERSION_1, Feature.NET_MRG_RXBUF, Feature.ANY_LAYOUT,
    Feature.RING_INDIRECT_DESC, Feature.RING_EVENT_IDX, Feature.RING_PACKED,
    Feature.IN_ORDER, Feature.VHOST_USER_PROTOCOL_FEATURES)
PROTOCOL_FEATURES = feature_mask(ProtocolFeature.REPLY_ACK, ProtocolFeature.MQ)
#: Added to the offer when the device has more than one queue pair.
MQ_FEATURES = feature_mask(Feature.NET_MQ, Feature.NET_CTRL_VQ)


class DeviceError(ValueError):
    """The frontend asked for something this device cannot do."""


class RingIndexError(DeviceError):
    """A request named a ring this device does not have (counted apart)."""


class VhostDevice:
    """State of one vhost-user connection's device: features, memory, rings.

    ``offered`` is the feature mask GET_FEATURES returns; ``stats`` one
    ``struct dr_stats *`` per data ring (RX and TX of each queue pair, in
    ring order: two per pair); ``max_queue_size`` caps SET_VRING_NUM. With
    more than one pair (``len(stats) > 2``) there is a control queue too,
    ``ctrl``, and the offer must include ``MQ_FEATURES``."""

    def __init__(self, offered: int, stats: tuple[object, ...],
                 max_queue_size: int = MAX_QUEUE_SIZE) -> None:
        if len(stats) < 2 or len(stats) % 2 or len(stats) > 2 * MAX_QUEUE_PAIRS:
            raise ValueError(f"{len(stats)} ring counter blocks: two per queue pair, "
                             f"1 to {MAX_QUEUE_PAIRS} pairs")
        self.offered = offered
        self.max_queue_size = max_queue_size
        self.features = 0
        self.protocol_features = 0
        self.memory: GuestMemory | None = None
        self.queue_pairs = len(stats) // 2
        self.ctrl = ControlQueue(self.queue_pairs) if self.queue_pairs > 1 else None
        rings = [Vring(i, s) for i, s in enumerate(stats)]
        self.vrings = tuple(rings + ([self.ctrl.vring] if self.ctrl else []))

    def pair_active(self, pair: int) -> bool:
        """True unless the driver, through our control queue, set fewer
        pairs than ``pair + 1`` (without it, SET_VRING_ENABLE decides)."""
        return self.ctrl is None or pair < self.ctrl.pairs_in_use()

    @property
    def rx(self) -> Vring:
        """The guest's receive queue (index 0)."""
        return self.vrings[RX]

    @property
    def tx(self) -> Vring:
        """The guest's transmit queue (index 1)."""
        return self.vrings[TX]

    def handle(self, msg: Message) -> object:
        """Acts on ``msg``; returns its reply payload (None: ack only)."""
        handler = HANDLERS.get(msg.request)
        if handler is None:
            _close_fds(msg.fds)
            raise DeviceError(f"{msg.request.name}: not supported by this device")
        try:
            return handler(self, msg)
        except (VringError, GuestMemoryError) as e:
            raise DeviceError(f"{msg.request.name}: {e}") from None

    def reset(self) -> None:
        """Back to the state of a new connection: rings stopped, fds closed,
        memory unmapped (disconnect, RESET_OWNER)."""
        for vring in self.vrings:
            vring.reset()
        if self.ctrl is not None:
            self.ctrl.reset()
        if self.memory is not None:
            self.memory.close()
            self.memory = None
        self.features = self.protocol_features = 0

    def _vring(self, index: int) -> Vring:
        if not 0 <= index < len(self.vrings):
            pairs = "one queue pair" if self.queue_pairs == 1 else \
                f"{self.queue_pairs} queue pairs and a control queue"
            raise RingIndexError(f"ring index {index} out of range ({pairs}: "
                                 f"0 to {len(self.vrings) - 1})")
        return self.vrings[index]

    def _negotiated(self, bit: int) -> bool:
        return bool(self.features >> bit & 1)

    def _try_start(self, vring: Vring) -> None:
        """Starts a ring once complete; without PROTOCOL_FEATURES a started
        ring is enabled at once (the spec's rule)."""
        if vring.can_start() and self.memory is not None:
            vring.start(self.memory, self.features)
            if not self._negotiated(Feature.VHOST_USER_PROTOCOL_FEATURES):
                vring.enabled = True

    # -- handlers: one per request ------------------------------------------

    def get_features(self, msg: Message) -> int:
        """GET_FEATURES: the virtio features this device offers."""
        return self.offered

    def set_features(self, msg: Message) -> None:
        """SET_FEATURES: the driver's choice, a subset of the offer."""
        extra = msg.payload & ~self.offered
        if extra:
            raise DeviceError(f"SET_FEATURES: not offered: {', '.join(feature_names(extra))}")
        self.features = msg.payload
        for vring in self.vrings:
            if vring.started:
                vring.start(self.memory, self.features)

    def get_protocol_features(self, msg: Message) -> int:
        """GET_PROTOCOL_FEATURES: REPLY_ACK and MQ."""
        return PROTOCOL_FEATURES

    def set_protocol_features(self, msg: Message) -> None:
        """SET_PROTOCOL_FEATURES: the frontend's choice of them."""
        if msg.payload & ~PROTOCOL_FEATURES:
            raise DeviceError(f"SET_PROTOCOL_FEATURES: {msg.payload:#x} has bits not offered")
        self.protocol_features = msg.payload

    def get_queue_num(self, msg: Message) -> int:
        """GET_QUEUE_NUM: the queue pairs this device has."""
        return self.queue_pairs

    def set_owner(self, msg: Message) -> None:
        """SET_OWNER: nothing to do (one frontend per connection)."""
        return None

    def reset_owner(self, msg: Message) -> None:
        """RESET_OWNER: back to the state of a new connection."""
        self.reset()

    def set_mem_table(self, msg: Message) -> None:
        """SET_MEM_TABLE: maps the regions; running rings move to them."""
        table: MemoryTable = msg.payload
        try:
            memory = GuestMemory(table.regions, msg.fds)
        finally:
            _close_fds(msg.fds)
        old, self.memory = self.memory, memory
        # Running rings move to the new mapping before the old one goes; a
        # ring the new table cannot hold stays stopped (and is reported).
        errors = []
        for vring in self.vrings:
            try:
                self._try_start(vring)
            except VringError as e:
                errors.append(str(e))
        if old is not None:
            old.close()
        if errors:
            raise VringError("; ".join(errors))

    def set_vring_num(self, msg: Message) -> None:
        """SET_VRING_NUM: the queue size, up to ``max_queue_size``: a power
        of two on a split ring, any size on a packed one (checked again
        when the ring starts, should the features change in between)."""
        state: VringState = msg.payload
        vring = self._vring(state.index)
        n = state.num
        if not 0 < n <= self.max_queue_size:
            raise DeviceError(f"queue size {n} is not in 1..{self.max_queue_size}")
        if n & (n - 1) and not self._negotiated(Feature.RING_PACKED):
            raise DeviceError(f"queue size {n} is not a power of two, which a split ring "
                              "needs (RING_PACKED not negotiated)")
        vring.num = n

    def set_vring_addr(self, msg: Message) -> None:
        """SET_VRING_ADDR: where the three parts of a ring are (user addresses)."""
        addr: VringAddr = msg.payload
        vring = self._vring(addr.index)
        if addr.flags & VRING_F_LOG:
            raise DeviceError("used-ring logging asked for, but LOG_ALL was never offered")
        vring.addr = addr
        if vring.started:
            vring.start(self.memory, self.features)

    def set_vring_base(self, msg: Message) -> None:
        """SET_VRING_BASE: the avail index to start from (packed: the ring
        state, avail slot and wrap counter in the low 16 bits)."""
        state: VringState = msg.payload
        vring = self._vring(state.index)
        if state.num > 0xFFFF and not self._negotiated(Feature.RING_PACKED):
            raise DeviceError(f"ring base {state.num} does not fit a 16-bit index")
        if vring.started:
            raise DeviceError(f"ring {state.index} is running: GET_VRING_BASE first")
        vring.base = state.num

    def get_vring_base(self, msg: Message) -> VringState:
        """GET_VRING_BASE: stops the ring; replies where to resume."""
        state: VringState = msg.payload
        vring = self._vring(state.index)
        return VringState(state.index, vring.stop())

    def set_vring_kick(self, msg: Message) -> None:
        """SET_VRING_KICK: the kick eventfd; the ring starts when complete."""
        vring = self._ring_file(msg)
        vring.set_kick(msg.fds[0] if msg.fds else None)
        self._try_start(vring)

    def set_vring_call(self, msg: Message) -> None:
        """SET_VRING_CALL: the eventfd to interrupt the guest with."""
        self._ring_file(msg).set_call(msg.fds[0] if msg.fds else None)

    def set_vring_err(self, msg: Message) -> None:
        """SET_VRING_ERR: accepted and closed (counters report errors)."""
        # We never report ring errors through an fd: counters say them.
        self._ring_file(msg)
        _close_fds(msg.fds)

    def _ring_file(self, msg: Message) -> Vring:
        try:
            return self._vring(msg.payload.index)
        except DeviceError:
            _close_fds(msg.fds)
            raise

    def set_vring_enable(self, msg: Message) -> None:
        """SET_VRING_ENABLE: packets flow only on enabled rings."""
        state: VringState = msg.payload
        vring = self._vring(state.index)
        if state.num not in (0, 1):
            raise DeviceError(f"enable must be 0 or 1, not {state.num}")
        vring.enabled = bool(state.num)


def _close_fds(fds: tuple[int, ...]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


_Handler = Callable[[VhostDevice, Message], object]
R = Request
HANDLERS: dict[Request, _Handler] = {
    R.GET_FEATURES: VhostDevice.get_features,
    R.SET_FEATURES: VhostDevice.set_features,
    R.GET_PROTOCOL_FEATURES: VhostDevice.get_protocol_features,
    R.SET_PROTOCOL_FEATURES: VhostDevice.set_protocol_features,
    R.GET_QUEUE_NUM: VhostDevice.get_queue_num,
    R.SET_OWNER: VhostDevice.set_owner,
    R.RESET_OWNER: VhostDevice.reset_owner,
    R.SET_MEM_TABLE: VhostDevice.set_mem_table,
    R.SET_VRING_NUM: VhostDevice.set_vring_num,
    R.SET_VRING_ADDR: VhostDevice.set_vring_addr,
    R.SET_VRING_BASE: VhostDevice.set_vring_base,
    R.GET_VRING_BASE: VhostDevice.get_vring_base,
    R.SET_VRING_KICK: VhostDevice.set_vring_kick,
    R.SET_VRING_CALL: VhostDevice.set_vring_call,
    R.SET_VRING_ERR: VhostDevice.set_vring_err,
    R.SET_VRING_ENABLE: VhostDevice.set_vring_enable,
}
