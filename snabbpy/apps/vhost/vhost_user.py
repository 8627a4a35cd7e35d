"""VhostUser: the host (device) side of a virtio-net port over vhost-user.

The frontend (a VM's QEMU, DPDK's virtio_user, vguest) connects to the
socket (or we connect to it in client mode), shares its memory and rings,
and from then on packets move by memory copies, one C call per queue per
breath: ``pull()`` takes what the guest transmitted to ``output``,
``push()`` gives ``input`` to the guest. The socket is served in ``tick()``.
"""

from __future__ import annotations

import logging
import socket

from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import ffi, lib
from snabbpy.lib.vhost_user import REQUESTS, Message, VhostUserProtocolError
from snabbpy.lib.virtio.constants import Feature, feature_names
from snabbpy.lib.virtio.ring import MAX_QUEUE_SIZE

from .channel import Channel, Connector, Listener
from .device import RX, SUPPORTED_FEATURES, TX, DeviceError, VhostDevice
from .vring import STATS

log = logging.getLogger(__name__)

RING_COUNTERS = tuple(f"rxq_{n}" for n in STATS) + tuple(f"txq_{n}" for n in STATS)
COUNTERS = ("connects", "disconnects", "requests", "protocol_errors",
            "rxq_drop_not_ready") + RING_COUNTERS


def _offer(conf: dict) -> int:
    offered = SUPPORTED_FEATURES
    if conf["features"] is not None:
        extra = conf["features"] & ~SUPPORTED_FEATURES
        if extra:
            raise ConfigError(f"features: cannot offer {', '.join(feature_names(extra))} "
                              f"(supported: {', '.join(feature_names(SUPPORTED_FEATURES))})")
        offered = conf["features"]
    if not conf["mrg_rxbuf"]:
        offered &= ~(1 << Feature.NET_MRG_RXBUF)
    return offered


class VhostUser(App):
    """A virtio-net device whose driver is at the other end of a vhost-user
    socket. ``input``: packets for the guest; ``output``: packets from it."""

    inputs, outputs = ("input",), ("output",)
    link_types = (1,)  # parses Ethernet frames (core/linktypes.py)

    config = {
        "socket_path": Param(str, doc="Unix socket of the vhost-user connection"),
        "is_server": Param(bool, default=True,
                           doc="listen at socket_path (else connect to it, and reconnect)"),
        "mrg_rxbuf": Param(bool, default=True,
                           doc="offer MRG_RXBUF: packets may span guest buffers (jumbo frames)"),
        "features": Param(int, default=None,
                          doc="virtio feature mask to offer (default: all supported)"),
        "qsize": Param(int, default=MAX_QUEUE_SIZE, doc="largest queue size accepted"),
        "reconnect_interval": Param(float, default=0.5,
                                    doc="client mode: seconds between connection attempts"),
    }
    counters = COUNTERS

    def __init__(self, conf: dict) -> None:
        self.conf = conf
        if not conf["socket_path"]:
            raise ConfigError("socket_path: must not be empty")
        q = conf["qsize"]
        if not 0 < q <= MAX_QUEUE_SIZE or q & (q - 1):
            raise ConfigError(f"qsize: {q} is not a power of two up to {MAX_QUEUE_SIZE}")
        if conf["reconnect_interval"] <= 0:
            raise ConfigError("reconnect_interval: must be above 0 seconds")
        base = ffi.cast("uint64_t *", self.stats.pointer)
        stats = tuple(ffi.cast("struct dr_stats *", base + self.stats.index[f"{p}_packets"])
                      for p in ("rxq", "txq"))
        self.device = VhostDevice(_offer(conf), stats, q)
        self.channel: Channel | None = None
        self.last_error = ""
        self.endpoint = self._endpoint(conf)
        self._in = self._out = ffi.NULL

    @staticmethod
    def _endpoint(conf: dict) -> Listener | Connector:
        path = conf["socket_path"]
        if not conf["is_server"]:
            return Connector(path, conf["reconnect_interval"])
        try:
            return Listener(path)
        except OSError as e:
            raise ConfigError(f"socket_path: cannot listen at {path!r}: {e}") from None

    def link(self) -> None:
        i, o = self.input.get("input"), self.output.get("output")
        self._in = i.c if i is not None else ffi.NULL
        self._out = o.c if o is not None else ffi.NULL

    # -- data path: one C call per queue ------------------------------------

    def pull(self) -> None:
        tx = self.device.vrings[TX]
        if tx.q.ready:
            lib.dr_tx(tx.q, self._out if tx.enabled else ffi.NULL, lib.LINK_MAX_PACKETS)
            if tx.q.interrupt:
                tx.interrupt()

    def push(self) -> None:
        if self._in == ffi.NULL:
            return
        rx = self.device.vrings[RX]
        if rx.q.ready and rx.enabled and not rx.q.broken:
            lib.dr_rx(rx.q, self._in, lib.LINK_MAX_PACKETS)
            if rx.q.interrupt:
                rx.interrupt()
        elif not lib.link_empty(self._in):
            self.stats.add("rxq_drop_not_ready", lib.link_free_all(self._in))

    # -- control path: the socket --------------------------------------------

    def tick(self) -> None:
        if self.channel is None:
            sock = self.endpoint.poll()
            if sock is None:
                return
            self._connected(sock)
        try:
            messages = self.channel.read()
        except (VhostUserProtocolError, OSError) as e:
            self.stats.add("protocol_errors")
            self._disconnect(str(e))
            return
        for msg in messages:
            if self.channel is None:
                break
            self._request(msg)
        if self.channel is not None and self.channel.closed:
            self._disconnect("")

    def attach(self, sock: socket.socket) -> None:
        """Serves an already connected socket (a test's socketpair, or one
        passed by a parent process) as if it had just connected."""
        if self.channel is not None:
            self._disconnect("replaced by an attached socket")
        sock.setblocking(False)
        self._connected(sock)

    def _connected(self, sock: socket.socket) -> None:
        self.channel = Channel(sock)
        self.stats.add("connects")
        log.info("%s: frontend connected on %s", self.name, self.conf["socket_path"])

    def _request(self, msg: Message) -> None:
        self.stats.add("requests")
        log.debug("%s: %s %s fds=%s", self.name, msg.request.name, msg.payload, msg.fds)
        spec = REQUESTS[msg.request]
        try:
            payload = self.device.handle(msg)
        except DeviceError as e:
            self.stats.add("protocol_errors")
            self.last_error = str(e)
            log.warning("%s: %s", self.name, e)
            if msg.need_reply and spec.reply is None:
                self._send(self.channel.backend.ack(msg, ok=False))
            else:
                self._disconnect(str(e))
            return
        backend = self.channel.backend
        self._send(backend.reply(msg, payload) if spec.reply else backend.ack(msg))

    def _send(self, data: bytes) -> None:
        try:
            self.channel.send(data)
        except OSError as e:
            self._disconnect(f"cannot reply: {e}")

    def _disconnect(self, why: str) -> None:
        """Ends the connection: rings stop, memory is unmapped, packets in
        flight stay counted (the device holds none: it copies)."""
        if why:
            self.last_error = why
            log.warning("%s: disconnecting: %s", self.name, why)
        self.channel.close()
        self.channel = None
        self.device.reset()
        self.stats.add("disconnects")

    # -- life --------------------------------------------------------------

    @property
    def state(self) -> str:
        """"connected", "listening" (server) or "connecting" (client)."""
        if self.channel is not None:
            return "connected"
        return "listening" if self.conf["is_server"] else "connecting"

    def report(self) -> str:
        d = self.device
        lines = [f"{self.state} on {self.conf['socket_path']}; features: "
                 f"{' '.join(feature_names(d.features)) or '-'}; memory: {d.memory or '-'}"]
        for name, v in (("rx (to guest)", d.rx), ("tx (from guest)", d.tx)):
            q = v.q
            state = "running" if v.running else "started" if v.started else "stopped"
            if q.broken:
                state = "broken (bad avail idx)"
            lines.append(f"  {name}: {state}, size {v.num}, avail {q.last_avail}, "
                         f"used {q.used_idx}")
        if self.last_error:
            lines.append(f"  last error: {self.last_error}")
        return "\n".join(lines)

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        self.device.reset()
        self.endpoint.close()
