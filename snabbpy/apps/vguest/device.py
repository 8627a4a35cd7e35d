"""virtio-net device initialisation, through any transport.

``VirtioNetDevice`` brings a device up (virtio 1.x section 3.1.1: reset,
ACKNOWLEDGE, DRIVER, feature negotiation, FEATURES_OK, queue setup,
DRIVER_OK), owns its receive queue (0) and transmit queue (1) — and, with
``queue_pairs`` above 1 and a device offering MQ, queue pair k's rings 2k
and 2k+1, the pairs then set through the control queue or by the transport
— reads MAC and link status from the config space, and closes in order
(device reset, then the packets still on the rings freed). A device that refuses something
gets FAILED written to its status and a ``DeviceError`` naming the refusal.
"""

from __future__ import annotations

import struct
from typing import Any

from snabbpy.apps.vguest.control_queue import ControlQueueError, DriverControlQueue
from snabbpy.apps.vguest.transport import (
    CONFIG_MAC,
    CONFIG_MAX_PAIRS,
    CONFIG_STATUS,
    Transport,
    TransportError,
)
from snabbpy.core.memory import DMAMemory, dma
from snabbpy.lib.virtio import DeviceStatus, Feature, NetStatus, feature_mask, feature_names
from snabbpy.lib.virtio.net_ctrl import OK, control_queue_index, vq_pairs_set
from snabbpy.lib.virtio.net_header import header_size
from snabbpy.lib.virtio.packed_virtq import PackedVirtq
from snabbpy.lib.virtio.packed_virtq import area_size as packed_area_size
from snabbpy.lib.virtio.ring import check_queue_size
from snabbpy.lib.virtio.virtq import Virtq

RX_QUEUE, TX_QUEUE = 0, 1


def stats_key(queue: int) -> str:
    """The ``stats`` key of virtqueue ``queue``: "rx"/"tx" for pair 0,
    "rx<k>"/"tx<k>" for pair k."""
    pair, kind = divmod(queue, 2)
    return ("rx", "tx")[kind] + (str(pair) if pair else "")


class DeviceError(Exception):
    """The device refused initialisation; the message says what it refused."""


def wanted_features(mrg_rxbuf: bool, use_checksum: bool, event_idx: bool,
                    multiqueue: bool = False, packed: bool = False,
                    in_order: bool = False) -> int:
    """The feature bits vguest asks for, given its options. IN_ORDER only
    with packed rings (``negotiated`` drops it when they are not)."""
    bits = [Feature.VERSION_1, Feature.ANY_LAYOUT, Feature.NET_MAC, Feature.NET_STATUS]
    bits += [Feature.NET_MQ, Feature.NET_CTRL_VQ] * multiqueue
    bits += [Feature.NET_MRG_RXBUF] * mrg_rxbuf + [Feature.NET_CSUM] * use_checksum
    bits += [Feature.RING_EVENT_IDX] * event_idx + [Feature.RING_PACKED] * packed
    bits += [Feature.IN_ORDER] * (packed and in_order)
    return feature_mask(*bits)


def negotiated(offered: int, wanted: int) -> int:
    """The features to set: what both sides have, less IN_ORDER when the
    rings are split (vguest's split rings read every used entry, so a
    device writing one entry for a batch would leave them waiting)."""
    features = offered & wanted
    if not features >> Feature.RING_PACKED & 1:
        features &= ~(1 << Feature.IN_ORDER)
    return features


class VirtioNetDevice:
    """One virtio-net device with ``queue_pairs`` receive and transmit queues.

    ``open()`` initialises it; then use ``rx``/``tx`` (``Virtq`` objects of
    pair 0), ``pairs`` (every pair's (rx, tx)) and ``kick(queue)``.
    ``stats`` maps "rx"/"tx" (pair k > 0: "rx<k>"/"tx<k>") to ``uint64_t *``
    counter blocks (see ``virtq.STATS``), or None for private ones. The
    rings are ``PackedVirtq`` (same methods) when ``packed`` asked for
    RING_PACKED and the device offered it; with ``in_order`` too, they
    take the device's in-order batches when it offers IN_ORDER.
    """

    def __init__(self, transport: Transport, *, queue_size: int = 256, mrg_rxbuf: bool = True,
                 use_checksum: bool = False, event_idx: bool = False, packed: bool = False,
                 in_order: bool = False,
                 rx_buffer_size: int | None = None, stats: dict[str, Any] | None = None,
                 memory: DMAMemory = dma, queue_pairs: int = 1) -> None:
        self.transport, self.memory = transport, memory
        # Any size with packed rings asked for; a split ring's must be a
        # power of two, checked again once the ring kind is negotiated.
        self.queue_size = check_queue_size(queue_size, packed=packed)
        self.queue_pairs, self.packed = queue_pairs, packed
        self.wanted = wanted_features(mrg_rxbuf, use_checksum, event_idx, queue_pairs > 1,
                                      packed, in_order)
        self.pairs: list[tuple[Virtq | PackedVirtq, Virtq | PackedVirtq]] = []
        self.ctrl: DriverControlQueue | None = None
        self.ctrl_timeout = 5.0  # seconds a control command may wait for its ack
        self.rx_buffer_size = rx_buffer_size
        self.stats = stats or {}
        self.features = 0
        self.rx: Virtq | PackedVirtq | None = None
        self.tx: Virtq | PackedVirtq | None = None
        self.status = 0
        self.close_error: str | None = None

    def open(self) -> None:
        """Initialises the device; DeviceError (after writing FAILED) on refusal."""
        try:
            self.transport.reset()
            self._set_status(DeviceStatus.ACKNOWLEDGE)
            self._set_status(DeviceStatus.DRIVER)
            self._negotiate()
            pairs = self._pairs_to_use()
            for k in range(pairs):
                self.pairs.append((self._setup_queue(2 * k), self._setup_queue(2 * k + 1)))
            self.rx, self.tx = self.pairs[0]
            if pairs > 1 and not self.transport.sets_queue_pairs:
                self.ctrl = DriverControlQueue(self.transport, control_queue_index(
                    self._max_pairs(), True), self.memory, self.has(Feature.RING_PACKED))
            for rx, _ in self.pairs:
                rx.refill()
            self._set_status(DeviceStatus.DRIVER_OK)
            if self.ctrl is not None:
                self._set_pairs(pairs)
            for k in range(pairs):
                self.kick(2 * k)
        except Exception:
            self._fail()
            raise

    def _set_status(self, bit: int) -> None:
        self.status |= bit
        self.transport.set_status(self.status)

    def _fail(self) -> None:
        try:
            self.transport.set_status(self.status | DeviceStatus.FAILED)
        except Exception:  # noqa: BLE001 - already failing; the first error matters
            pass

    def _negotiate(self) -> None:
        offered = self.transport.get_features()
        self.features = negotiated(offered, self.wanted)
        self.transport.set_features(self.features)
        if not self.features >> Feature.VERSION_1 & 1:
            return  # legacy devices have no FEATURES_OK handshake
        self._set_status(DeviceStatus.FEATURES_OK)
        if not self.transport.get_status() & DeviceStatus.FEATURES_OK:
            raise DeviceError(
                f"{self.transport.name}: device refused features "
                f"{', '.join(feature_names(self.features))} (FEATURES_OK not set)")

    def _max_pairs(self) -> int:
        if not self.has(Feature.NET_MQ):
            return 1
        (n,) = struct.unpack("<H", self.transport.read_config(CONFIG_MAX_PAIRS, 2))
        return n

    def _pairs_to_use(self) -> int:
        if self.queue_pairs == 1:
            return 1
        if not (self.has(Feature.NET_MQ) and self.has(Feature.NET_CTRL_VQ)):
            raise DeviceError(f"{self.transport.name}: {self.queue_pairs} queue pairs asked "
                              "for, but the device does not offer MQ and a control queue")
        most = self._max_pairs()
        if not 1 <= most or most < self.queue_pairs:
            raise DeviceError(f"{self.transport.name}: {self.queue_pairs} queue pairs asked "
                              f"for, the device has {most}")
        return self.queue_pairs

    def _set_pairs(self, pairs: int) -> None:
        try:
            ack = self.ctrl.command(vq_pairs_set(pairs), self.ctrl_timeout)
        except ControlQueueError as e:
            raise DeviceError(str(e)) from None
        if ack != OK:
            raise DeviceError(f"{self.transport.name}: device refused {pairs} queue pairs "
                              "(VQ_PAIRS_SET answered ERR)")

    def has(self, bit: int) -> bool:
        """True when feature ``bit`` was negotiated."""
        return bool(self.features >> bit & 1)

    def rings(self) -> str:
        """"packed rings" or "split rings", and, when packed rings were
        asked for and not negotiated, why not (once open)."""
        if self.has(Feature.RING_PACKED):
            return "packed rings"
        if not self.packed:
            return "split rings"
        t = self.transport
        if t.feature_bits <= Feature.RING_PACKED:
            why = (f"but {t.name} has the {t.feature_bits} feature bits of a legacy device, "
                   f"and RING_PACKED is bit {Feature.RING_PACKED}")
        else:
            why = "the device does not offer them"
        return f"split rings (packed rings asked for, {why})"

    def _setup_queue(self, queue: int) -> Virtq | PackedVirtq:
        t = self.transport
        limit = t.max_queue_size(queue)
        if limit == 0:
            raise DeviceError(f"{t.name}: device has no queue {queue}")
        size = limit if t.fixed_queue_size else min(self.queue_size, limit)
        packed = self.has(Feature.RING_PACKED)
        if not packed and size & (size - 1):
            raise DeviceError(f"{t.name}: queue_size {size} is not a power of two, which a "
                              f"split ring needs; the device runs {self.rings()}")
        if not t.fixed_queue_size:
            t.set_queue_size(queue, size)
        vq = self._packed_queue(queue, size) if packed else self._split_queue(queue, size)
        t.set_queue_addresses(queue, *vq.device_addresses())
        t.enable_queue(queue)
        return vq

    def _packed_queue(self, queue: int, size: int) -> PackedVirtq:
        return PackedVirtq(size, hdr_size=header_size(self.features),
                           align=self.transport.area_align(packed_area_size(size)),
                           event_idx=self.has(Feature.RING_EVENT_IDX),
                           in_order=self.has(Feature.IN_ORDER),
                           mrg_rxbuf=self.has(Feature.NET_MRG_RXBUF),
                           use_checksum=self.has(Feature.NET_CSUM) and queue % 2 == TX_QUEUE,
                           stats=self.stats.get(stats_key(queue)),
                           memory=self.memory, **self._rx_buffer_option(queue))

    def _split_queue(self, queue: int, size: int) -> Virtq:
        t = self.transport
        layout = t.ring_layout(size, self.has(Feature.RING_EVENT_IDX))
        any_layout = self.has(Feature.ANY_LAYOUT) or self.has(Feature.VERSION_1)
        mrg = self.has(Feature.NET_MRG_RXBUF)
        vq = Virtq(layout, hdr_size=header_size(self.features), align=t.ring_align,
                   one_desc=any_layout or (mrg and queue % 2 == RX_QUEUE),
                   event_idx=self.has(Feature.RING_EVENT_IDX), mrg_rxbuf=mrg,
                   use_checksum=self.has(Feature.NET_CSUM) and queue % 2 == TX_QUEUE,
                   stats=self.stats.get(stats_key(queue)),
                   memory=self.memory, **self._rx_buffer_option(queue))
        return vq

    def _rx_buffer_option(self, queue: int) -> dict[str, int]:
        if queue % 2 == RX_QUEUE and self.rx_buffer_size:
            return {"rx_buffer_size": self.rx_buffer_size}
        return {}

    def kick(self, queue: int) -> None:
        """Notifies the device about ``queue`` if it wants to hear of it."""
        pair = self.pairs[queue // 2] if queue // 2 < len(self.pairs) else (None, None)
        vq = pair[queue % 2]
        if vq is not None and vq.notify_needed():
            self.transport.notify(queue)

    @property
    def mac(self) -> bytes | None:
        """The device's MAC address (config space), None without NET_MAC."""
        if not self.has(Feature.NET_MAC):
            return None
        return self.transport.read_config(CONFIG_MAC, 6)

    @property
    def link_up(self) -> bool:
        """Link status from the config space (always up without NET_STATUS)."""
        if not self.has(Feature.NET_STATUS):
            return True
        (status,) = struct.unpack("<H", self.transport.read_config(CONFIG_STATUS, 2))
        return bool(status & NetStatus.LINK_UP)

    def close(self) -> int:
        """Resets the device, frees the packets its rings held, releases the
        transport. Returns the number of packets freed. A device that cannot
        be reset (its backend is gone) is closed all the same; the reason is
        kept in ``close_error``."""
        freed = 0
        try:
            self.transport.reset()
        except (TransportError, OSError) as e:  # OSError: PCI registers gone (PCIError)
            self.close_error = str(e)
        for vq in (vq for pair in self.pairs for vq in pair):
            freed += vq.release_all()
        self.pairs = []
        self.rx = self.tx = None
        self.ctrl = None
        self.transport.close()
        return freed
