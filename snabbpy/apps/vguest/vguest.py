"""VGuest: a virtio-net port driven from userspace.

Packets on ``input`` go out through the device's transmit queue; packets
the device receives come out on ``output``. The device is reached over
vhost-user (``vhost_user``: a socket path) or, inside a VM, over PCI
(``pciaddr``: legacy or modern virtio-pci). With ``queues: N`` the
device's N queue pairs are used: pair k on ports ``input<k>`` and
``output<k>`` (pair 0: ``input``/``output``); put an ``rss.RSS`` in front
to spread one link over them by flow.
"""

from __future__ import annotations

from snabbpy.apps.vguest.device import DeviceError, VirtioNetDevice, stats_key
from snabbpy.apps.vguest.pci_transport import open_pci_transport
from snabbpy.apps.vguest.transport import Transport, TransportError
from snabbpy.apps.vguest.vhost_user_transport import VhostUserTransport
from snabbpy.core import packet
from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import lib
from snabbpy.lib.pci_bar import PCIError
from snabbpy.lib.virtio import feature_names
from snabbpy.lib.virtio.net_ctrl import MAX_QUEUE_PAIRS, queue_pairs
from snabbpy.lib.virtio.queue_ports import INPUTS, OUTPUTS, check_ports
from snabbpy.lib.virtio.ring import check_queue_size
from snabbpy.lib.virtio.virtq import STATS

#: Packets per queue per breath at most: the whole ring.
BATCH = lib.VIRTQ_MAX_SIZE
def counters_for_queues(queues: int) -> tuple[str, ...]:
    """rx_*, tx_* (then rx<k>_*, tx<k>_* for pair k) for ``queues`` pairs."""
    return tuple(f"{stats_key(q)}_{name}" for q in range(2 * queues) for name in STATS)


COUNTERS = counters_for_queues(MAX_QUEUE_PAIRS)


def open_transport(conf: dict) -> Transport:
    """The transport the configuration names (exactly one of the two)."""
    if (conf["pciaddr"] is None) == (conf["vhost_user"] is None):
        raise ConfigError("vguest: give exactly one of pciaddr and vhost_user")
    if conf["vhost_user"] is not None:
        return VhostUserTransport(conf["vhost_user"], is_server=conf["is_server"],
                                  control_queue=conf["control_queue"],
                                  multiqueue=conf["queues"] > 1)
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

    config = {
        "pciaddr": Param(str, default=None, doc="PCI address of a virtio-net device (in a VM)"),
        "pci_mode": Param(str, default="auto",
                          doc="PCI transport: auto (modern if VERSION_1 offered), legacy, modern"),
        "vhost_user": Param(str, default=None, doc="vhost-user socket path"),
        "is_server": Param(bool, default=False, doc="listen on vhost_user instead of connecting"),
        "use_checksum": Param(bool, default=False, doc="offload TCP/UDP checksums (CSUM)"),
        "queue_size": Param(check_queue_size, default=256, doc="descriptors per queue"),
        "mrg_rxbuf": Param(bool, default=True, doc="accept merged receive buffers"),
        "event_idx": Param(bool, default=False, doc="negotiate RING_EVENT_IDX"),
        "rx_buffer_size": Param(_buffer_size, default=packet.PAYLOAD_SIZE,
                                doc="bytes of each receive buffer (merged when smaller)"),
        "queues": Param(queue_pairs, default=1, doc="queue pairs to use (the device needs MQ)"),
        "control_queue": Param(bool, default=False,
                               doc="vhost-user: hand the control queue to the backend and "
                                   "set the pairs with VQ_PAIRS_SET (else SET_VRING_ENABLE)"),
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
        # A device we cannot reach or set up is the user's setup to fix (a
        # wrong path or address, no backend): one line, no traceback.
        try:
            self.transport = open_transport(conf)
        except TransportError as e:
            raise ConfigError(str(e)) from None
        base = self.stats.pointer
        stats = {d: base + self.stats.index[f"{d}_packets"]
                 for d in map(stats_key, range(2 * conf["queues"]))}
        self.device = VirtioNetDevice(
            self.transport, queue_size=conf["queue_size"], mrg_rxbuf=conf["mrg_rxbuf"],
            use_checksum=conf["use_checksum"], event_idx=conf["event_idx"],
            rx_buffer_size=conf["rx_buffer_size"], stats=stats, queue_pairs=conf["queues"])
        try:
            self.device.open()
        except (TransportError, DeviceError, PCIError) as e:
            self.device.close()  # frees the receive buffers already posted
            raise ConfigError(str(e)) from None
        # (rx ring, tx ring, queue index of rx, input link, output link) per pair
        self._pairs = [[rx, tx, 2 * k, None, None]
                       for k, (rx, tx) in enumerate(self.device.pairs)]

    def link(self) -> None:
        check_ports((*self.input, *self.output), range(len(self._pairs)))
        for k, p in enumerate(self._pairs):
            i, o = self.input.get(INPUTS[k]), self.output.get(OUTPUTS[k])
            p[3], p[4] = (i.c if i else None), (o.c if o else None)

    def pull(self) -> None:
        # Without an output link, received buffers wait on the ring.
        kick = self.device.kick
        for rx, _, queue, _, out in self._pairs:
            if out is not None:
                rx.receive(out, BATCH)
            if rx.refill():
                kick(queue)

    def push(self) -> None:
        kick = self.device.kick
        for _, tx, queue, inp, _ in self._pairs:
            tx.reclaim()
            if inp is not None and tx.transmit(inp, BATCH):
                kick(queue + 1)

    def report(self) -> str:
        """Counters that are not zero, and the device's identity."""
        s = self.stats.snapshot()
        mac = self.device.mac
        lines = [f"{self.name}: {self.transport.name}"
                 + (f", mac {mac.hex(':')}" if mac else "")
                 + f"; features: {' '.join(feature_names(self.device.features))}"]
        lines += [f"  {k}: {v:,}" for k, v in s.items() if v]
        queues = [vq for pair in self.device.pairs for vq in pair]
        for name, vq in zip(map(stats_key, range(len(queues))), queues, strict=True):
            if vq.broken:
                lines.append(f"  {name} queue stalled: the device's used idx is out of range")
        return "\n".join(lines)

    def stop(self) -> None:
        self.device.close()
