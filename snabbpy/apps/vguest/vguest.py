"""VGuest: a virtio-net port driven from userspace.

Packets on ``input`` go out through the device's transmit queue; packets
the device receives come out on ``output``. The device is reached over
vhost-user (``vhost_user``: a socket path) or, inside a VM, over PCI
(``pciaddr``: legacy or modern virtio-pci). With ``queues: N`` the
device's N queue pairs are used: pair k on ports ``input<k>`` and
``output<k>`` (pair 0: ``input``/``output``); put an ``rss.RSS`` in front
to spread one link over them by flow.

Over vhost-user the backend may go away and come back (reconnect.py): the
device is torn down (every packet on its rings freed, those in flight
counted lost), input is dropped and counted while there is no backend, and
the next backend gets the full device initialisation again.
"""

from __future__ import annotations

import logging

from snabbpy.apps.vguest.device import DeviceError, VirtioNetDevice, stats_key
from snabbpy.apps.vguest.pci_transport import open_pci_transport
from snabbpy.apps.vguest.reconnect import COUNTERS as CONNECTION_COUNTERS
from snabbpy.apps.vguest.reconnect import Reconnector, RecycledMemory, backend_gone
from snabbpy.apps.vguest.transport import Transport, TransportError
from snabbpy.apps.vguest.vhost_user_transport import VhostUserTransport
from snabbpy.core import packet
from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import lib
from snabbpy.lib.pci_bar import PCIError
from snabbpy.lib.virtio import Feature, feature_names
from snabbpy.lib.virtio.net_ctrl import MAX_QUEUE_PAIRS, queue_pairs
from snabbpy.lib.virtio.queue_ports import INPUTS, OUTPUTS, check_ports
from snabbpy.lib.virtio.ring import check_any_queue_size, check_queue_size
from snabbpy.lib.virtio.virtq import STATS

log = logging.getLogger(__name__)

#: Packets per queue per breath at most: the whole ring.
BATCH = lib.VIRTQ_MAX_SIZE
#: Seconds a reconnecting backend has for the whole device initialisation.
RECONNECT_TIMEOUT = 5.0


def counters_for_queues(queues: int) -> tuple[str, ...]:
    """rx_*, tx_* (then rx<k>_*, tx<k>_* for pair k) for ``queues`` pairs,
    then the connection's counters (reconnect.COUNTERS)."""
    return tuple(f"{stats_key(q)}_{name}" for q in range(2 * queues)
                 for name in STATS) + CONNECTION_COUNTERS


COUNTERS = counters_for_queues(MAX_QUEUE_PAIRS)


def open_transport(conf: dict, sock=None, timeout: float = 30.0) -> Transport:
    """The transport the configuration names (exactly one of the two);
    ``sock``: a vhost-user backend already connected."""
    if (conf["pciaddr"] is None) == (conf["vhost_user"] is None):
        raise ConfigError("vguest: give exactly one of pciaddr and vhost_user")
    if conf["vhost_user"] is not None:
        return VhostUserTransport(conf["vhost_user"], is_server=conf["is_server"],
                                  control_queue=conf["control_queue"],
                                  multiqueue=conf["queues"] > 1, sock=sock, timeout=timeout)
    return open_pci_transport(conf["pciaddr"], mode=conf["pci_mode"])


def _buffer_size(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    if not 64 <= value <= packet.PAYLOAD_SIZE:
        raise ValueError(f"{value} is outside 64..{packet.PAYLOAD_SIZE}")
    return value


class VGuest(App):
    """A virtio-net guest driver as an app: ``input`` -> device -> ``output``."""

    inputs, outputs = INPUTS, OUTPUTS
    link_types = (1,)  # parses Ethernet frames (core/linktypes.py)

    config = {
        "pciaddr": Param(str, default=None, doc="PCI address of a virtio-net device (in a VM)"),
        "pci_mode": Param(str, default="auto",
                          doc="PCI transport: auto (modern if VERSION_1 offered), legacy, modern"),
        "vhost_user": Param(str, default=None, doc="vhost-user socket path"),
        "is_server": Param(bool, default=False, doc="listen on vhost_user instead of connecting"),
        "use_checksum": Param(bool, default=False, doc="offload TCP/UDP checksums (CSUM)"),
        "queue_size": Param(check_any_queue_size, default=256,
                            doc="descriptors per queue, up to 32768 (a power of two on "
                                "split rings; capped by the device's maximum)"),
        "mrg_rxbuf": Param(bool, default=True, doc="accept merged receive buffers"),
        "event_idx": Param(bool, default=False, doc="negotiate RING_EVENT_IDX"),
        "packed": Param(bool, default=True,
                        doc="ask for RING_PACKED: packed rings when the device offers them"),
        "in_order": Param(bool, default=True,
                          doc="with packed rings, ask for IN_ORDER: the device may hand "
                              "back a batch of buffers with one used descriptor"),
        "rx_buffer_size": Param(_buffer_size, default=packet.PAYLOAD_SIZE,
                                doc="bytes of each receive buffer (merged when smaller)"),
        "queues": Param(queue_pairs, default=1, doc="queue pairs to use (the device needs MQ)"),
        "control_queue": Param(bool, default=False,
                               doc="vhost-user: hand the control queue to the backend and "
                                   "set the pairs with VQ_PAIRS_SET (else SET_VRING_ENABLE)"),
        "reconnect_interval": Param(float, default=0.5,
                                    doc="vhost-user client: seconds between tries to reach "
                                        "a backend that went away"),
    }
    counters = COUNTERS

    @classmethod
    def counters_for(cls, conf: dict) -> tuple[str, ...]:
        """The counter blocks of the ``queues`` configured."""
        return counters_for_queues(conf.get("queues", 1))

    @classmethod
    def dma_backend(cls, conf: dict):
        """A PCI device reaches memory by physical address: hugepages then."""
        if conf.get("pciaddr") is None or conf.get("vhost_user") is not None:
            return None  # vhost-user shares memfds; both keys: refused at start
        from snabbpy.core.hugepages import HugepageBackend

        return HugepageBackend()

    def __init__(self, conf: dict) -> None:
        super().__init__(conf)
        if conf["reconnect_interval"] <= 0:
            raise ConfigError("reconnect_interval: must be above 0 seconds")
        try:
            check_queue_size(conf["queue_size"], packed=conf["packed"])
        except ValueError as e:
            raise ConfigError(f"queue_size: {e} (packed: false)") from None
        self.inputs_c: list = [None] * conf["queues"]
        self.outputs_c: list = [None] * conf["queues"]
        self.reconnector = None
        self.ring_memory = RecycledMemory()  # each new device reuses the rings' memory
        self.last_error = ""
        # A device we cannot reach or set up is the user's setup to fix (a
        # wrong path or address, no backend): one line, no traceback.
        try:
            self.transport = open_transport(conf)
        except TransportError as e:
            raise ConfigError(str(e)) from None
        if isinstance(self.transport, VhostUserTransport):  # a socket: it may go
            self.reconnector = Reconnector(conf["vhost_user"], conf["is_server"],
                                           conf["reconnect_interval"])
        try:
            self._open_device()
        except (TransportError, DeviceError, PCIError) as e:
            raise ConfigError(str(e)) from None

    def _open_device(self) -> None:
        """Initialises the device behind ``self.transport`` (the device is
        closed again, the transport with it, if that fails)."""
        conf = self.conf
        base = self.stats.pointer
        stats = {d: base + self.stats.index[f"{d}_packets"]
                 for d in map(stats_key, range(2 * conf["queues"]))}
        self.device = VirtioNetDevice(
            self.transport, queue_size=conf["queue_size"], mrg_rxbuf=conf["mrg_rxbuf"],
            use_checksum=conf["use_checksum"], event_idx=conf["event_idx"],
            packed=conf["packed"], in_order=conf["in_order"],
            rx_buffer_size=conf["rx_buffer_size"], stats=stats,
            queue_pairs=conf["queues"], memory=self.ring_memory)
        try:
            self.device.open()
        except Exception:
            self.device.close()  # frees the receive buffers already posted
            self.ring_memory.recycle()
            raise
        if self.conf["packed"] and self.transport.feature_bits <= Feature.RING_PACKED:
            log.info("%s: %s", self.name, self.device.rings())  # legacy PCI
        self._bind()

    def _bind(self) -> None:
        # (rx ring, tx ring, queue index of rx, input link, output link) per pair
        self._pairs = [[rx, tx, 2 * k, self.inputs_c[k], self.outputs_c[k]]
                       for k, (rx, tx) in enumerate(self.device.pairs)]

    @property
    def connected(self) -> bool:
        """False while a vhost-user backend is gone and not yet back."""
        return self.reconnector is None or not self.reconnector.waiting

    def link(self) -> None:
        check_ports((*self.input, *self.output), range(self.conf["queues"]))
        for k in range(self.conf["queues"]):
            i, o = self.input.get(INPUTS[k]), self.output.get(OUTPUTS[k])
            self.inputs_c[k], self.outputs_c[k] = (i.c if i else None), (o.c if o else None)
        if self.connected:
            self._bind()

    def pull(self) -> None:
        # Without an output link, received buffers wait on the ring.
        kick = self.device.kick
        for rx, _, queue, _, out in self._pairs:
            if out is not None:
                rx.receive(out, BATCH)
            if rx.refill():
                kick(queue)

    def push(self) -> None:
        if not self.connected:
            self._drop_input()
            return
        for _, tx, queue, inp, _ in self._pairs:
            if tx.push(inp, BATCH):  # reclaim, transmit: one call
                self.transport.notify(queue + 1)

    def _drop_input(self) -> None:
        """No backend: what arrives is dropped and counted, so the links
        upstream keep moving instead of filling up for as long as it lasts."""
        dropped = 0
        for link in self.input.values():
            while not link.empty():
                packet.free(link.receive())
                dropped += 1
        if dropped:
            self.stats.add("input_dropped_disconnected", dropped)

    # -- reconnect (vhost-user) --------------------------------------------

    def tick(self) -> None:
        """Notices a backend gone, and brings the device up on the next."""
        if self.reconnector is None:
            return
        if self.connected:
            why = backend_gone(self.transport.sock)
            if why is not None:
                self.disconnect(why)
            return
        sock = self.reconnector.poll()
        if sock is None:
            return
        try:
            self.reconnector.last_error = ""
            self.transport = open_transport(self.conf, sock, RECONNECT_TIMEOUT)
            self._open_device()
        except (TransportError, DeviceError) as e:
            self.stats.add("reconnect_failures")
            self.last_error = str(e)
            log.warning("%s: reconnect failed: %s", self.name, e)
            self.reconnector.start()
            return
        self.stats.add("reconnects")
        log.info("%s: reconnected on %s", self.name, self.conf["vhost_user"])

    def disconnect(self, why: str) -> None:
        """Ends the device on a backend that is gone: what it finished is
        delivered, every packet still on the rings freed (those in transmit
        counted lost), and the wait for the next backend begins."""
        self.last_error = why
        log.warning("%s: backend gone (%s): reconnecting", self.name, why)
        lost = 0
        for rx, tx, _, _, out in self._pairs:
            if out is not None:
                rx.receive(out, BATCH)
            tx.reclaim()
            lost += tx.in_flight()
        self.device.close()
        self.ring_memory.recycle()
        self._pairs = []
        self.stats.add("disconnects")
        self.stats.add("tx_lost_on_disconnect", lost)
        self.reconnector.start()

    def report(self) -> str:
        """Counters that are not zero, and the device's identity."""
        s = self.stats.snapshot()
        mac = self.device.mac if self.connected else None
        lines = [f"{self.name}: {self.transport.name}"
                 + (f", mac {mac.hex(':')}" if mac else "")
                 + f", {self.device.rings()}"
                 + f"; features: {' '.join(feature_names(self.device.features))}"]
        if not self.connected:
            lines.append("  " + ("listening for" if self.conf["is_server"] else "connecting to")
                         + " the next backend; last error: "
                         + (self.reconnector.last_error or self.last_error))
        lines += [f"  {k}: {v:,}" for k, v in s.items() if v]
        queues = [vq for pair in self.device.pairs for vq in pair]
        for name, vq in zip(map(stats_key, range(len(queues))), queues, strict=True):
            if vq.broken:
                lines.append(f"  {name} queue stalled: {vq.stall_reason}")
        return "\n".join(lines)

    def stop(self) -> None:
        if self.reconnector is not None:
            self.reconnector.close()
        if self.connected:
            self.device.close()
