"""VGuest: a virtio-net port driven from userspace.

Packets on ``input`` go out through the device's transmit queue; packets
the device receives come out on ``output``. The device is reached over
vhost-user (``vhost_user``: a socket path) or, inside a VM, over PCI
(``pciaddr``) once a PCI transport module is installed.
"""

from __future__ import annotations

import importlib

from snabbpy.apps.vguest.device import DeviceError, VirtioNetDevice
from snabbpy.apps.vguest.transport import Transport, TransportError
from snabbpy.apps.vguest.virtq import STATS
from snabbpy.core import packet
from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import lib
from snabbpy.lib.pci_bar import PCIError
from snabbpy.lib.virtio import feature_names
from snabbpy.lib.virtio.ring import check_queue_size

#: Where a PCI transport is looked for: module, factory taking (pciaddr).
PCI_TRANSPORT = ("snabbpy.apps.vguest.pci_transport", "open_pci_transport")

#: Packets per queue per breath at most: the whole ring.
BATCH = lib.VIRTQ_MAX_SIZE
COUNTERS = tuple(f"{d}_{name}" for d in ("rx", "tx") for name in STATS)


def open_transport(conf: dict) -> Transport:
    """The transport the configuration names (exactly one of the two)."""
    if (conf["pciaddr"] is None) == (conf["vhost_user"] is None):
        raise ConfigError("vguest: give exactly one of pciaddr and vhost_user")
    if conf["vhost_user"] is not None:
        from snabbpy.apps.vguest.vhost_user_transport import VhostUserTransport

        return VhostUserTransport(conf["vhost_user"], is_server=conf["is_server"])
    module, factory = PCI_TRANSPORT
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise ConfigError(f"vguest: pciaddr {conf['pciaddr']!r}: PCI transports are not "
                          "built yet (use vhost_user)") from None
    return getattr(mod, factory)(conf["pciaddr"], mode=conf["pci_mode"])


def _queue_size(value: int) -> int:
    try:
        return check_queue_size(value)
    except ValueError as e:
        raise ValueError(str(e)) from None


def _buffer_size(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    if not 64 <= value <= packet.PAYLOAD_SIZE:
        raise ValueError(f"{value} is outside 64..{packet.PAYLOAD_SIZE}")
    return value


class VGuest(App):
    """A virtio-net guest driver as an app: ``input`` -> device -> ``output``."""

    inputs, outputs = ("input",), ("output",)
    link_types = (1,)  # parses Ethernet frames (core/linktypes.py)

    config = {
        "pciaddr": Param(str, default=None, doc="PCI address of a virtio-net device (in a VM)"),
        "pci_mode": Param(str, default="auto",
                          doc="PCI transport: auto (modern if VERSION_1 offered), legacy, modern"),
        "vhost_user": Param(str, default=None, doc="vhost-user socket path"),
        "is_server": Param(bool, default=False, doc="listen on vhost_user instead of connecting"),
        "use_checksum": Param(bool, default=False, doc="offload TCP/UDP checksums (CSUM)"),
        "queue_size": Param(_queue_size, default=256, doc="descriptors per queue"),
        "mrg_rxbuf": Param(bool, default=True, doc="accept merged receive buffers"),
        "event_idx": Param(bool, default=False, doc="negotiate RING_EVENT_IDX"),
        "rx_buffer_size": Param(_buffer_size, default=packet.PAYLOAD_SIZE,
                                doc="bytes of each receive buffer (merged when smaller)"),
    }
    counters = COUNTERS

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
        stats = {d: base + self.stats.index[f"{d}_packets"] for d in ("rx", "tx")}
        self.device = VirtioNetDevice(
            self.transport, queue_size=conf["queue_size"], mrg_rxbuf=conf["mrg_rxbuf"],
            use_checksum=conf["use_checksum"], event_idx=conf["event_idx"],
            rx_buffer_size=conf["rx_buffer_size"], stats=stats)
        try:
            self.device.open()
        except (TransportError, DeviceError, PCIError) as e:
            self.device.close()  # frees the receive buffers already posted
            raise ConfigError(str(e)) from None
        self._rx, self._tx = self.device.rx.c, self.device.tx.c
        self._in = self._out = None

    def link(self) -> None:
        self._in = self.input["input"].c if "input" in self.input else None
        self._out = self.output["output"].c if "output" in self.output else None

    def pull(self) -> None:
        # Without an output link, received buffers wait on the ring.
        rx = self._rx
        if self._out is not None:
            lib.virtq_rx_packets(rx, self._out, BATCH)
        if lib.virtq_rx_refill(rx) and lib.virtq_notify_needed(rx):
            self.transport.notify(0)

    def push(self) -> None:
        tx = self._tx
        lib.virtq_tx_reclaim(tx)
        if self._in is not None and lib.virtq_tx_packets(tx, self._in, BATCH):
            if lib.virtq_notify_needed(tx):
                self.transport.notify(1)

    def report(self) -> str:
        """Counters that are not zero, and the device's identity."""
        s = self.stats.snapshot()
        mac = self.device.mac
        lines = [f"{self.name}: {self.transport.name}"
                 + (f", mac {mac.hex(':')}" if mac else "")
                 + f"; features: {' '.join(feature_names(self.device.features))}"]
        lines += [f"  {k}: {v:,}" for k, v in s.items() if v]
        for name, vq in (("rx", self.device.rx), ("tx", self.device.tx)):
            if vq is not None and vq.broken:
                lines.append(f"  {name} queue stalled: the device's used idx is out of range")
        return "\n".join(lines)

    def stop(self) -> None:
        self.device.close()
