"""VhostUser: the host (device) side of a virtio-net port over vhost-user.

The frontend (a VM's QEMU, DPDK's virtio_user, vguest) connects to the
socket (or we connect to it in client mode), shares its memory and rings,
and from then on packets move by memory copies, one C call per queue per
breath: ``pull()`` takes what the guest transmitted to ``output``,
``push()`` gives ``input`` to the guest. The socket is served in ``tick()``.
With ``queues: N`` the device has N queue pairs (``queue_pair.py``: pair k
on ports ``input<k>``/``output<k>``) and a control queue.
"""

from __future__ import annotations

import logging
import socket

from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import ffi
from snabbpy.lib.vhost_user import REQUESTS, Message, VhostUserProtocolError
from snabbpy.lib.vhost_user.sockets import Connector, Listener
from snabbpy.lib.virtio.constants import Feature, feature_names
from snabbpy.lib.virtio.net_ctrl import MAX_QUEUE_PAIRS, queue_pairs
from snabbpy.lib.virtio.queue_ports import INPUTS, OUTPUTS, check_ports, port_names
from snabbpy.lib.virtio.ring import MAX_QUEUE_SIZE

from .channel import Channel
from .control_queue import COUNTERS as CTRL_COUNTERS
from .device import (
    MQ_FEATURES,
    SUPPORTED_FEATURES,
    DeviceError,
    RingIndexError,
    VhostDevice,
)
from .handoff_owner import RemoteQueues
from .handoff_socket import HandoffListener, handoff_path
from .offloads import offload_offer
from .queue_pair import QueuePair, pair_counters, ring_stats
from .vhost_queue import owners
from .vring import STATS

log = logging.getLogger(__name__)

RING_COUNTERS = tuple(f"rxq_{n}" for n in STATS) + tuple(f"txq_{n}" for n in STATS)
#: The counters of a one-queue device.
ONE_QUEUE = ("connects", "disconnects", "requests", "protocol_errors",
             "rxq_drop_not_ready") + RING_COUNTERS + ("bad_ring_index",)

#: Pairs lent to other processes (``handoff_owner.py``): workers lost, errors.
HANDOFF_COUNTERS = ("handoff_lost", "handoff_errors")


def counters_for_queues(queues: int) -> tuple[str, ...]:
    """The counters of a device with ``queues`` pairs."""
    if queues == 1:
        return ONE_QUEUE
    return ONE_QUEUE + CTRL_COUNTERS + HANDOFF_COUNTERS + tuple(n for k in range(1, queues)
                                             for n in pair_counters(k))


COUNTERS = counters_for_queues(MAX_QUEUE_PAIRS)


def _served(conf: dict) -> list[int]:
    n, serve = conf["queues"], conf["serve"]
    if serve is None:
        return list(range(n))
    if any(isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < n for k in serve):
        raise ConfigError(f"serve: {serve} must list queue pairs 0 to {n - 1} (queues: {n})")
    if len(set(serve)) != len(serve):
        raise ConfigError(f"serve: {serve} lists a pair twice")
    return sorted(serve)


def _offer(conf: dict) -> int:
    offloads = offload_offer(conf)
    offered = SUPPORTED_FEATURES | offloads
    supported = offered | (MQ_FEATURES if conf["queues"] > 1 else 0)
    if conf["features"] is not None:
        extra = conf["features"] & ~supported
        if extra:
            raise ConfigError(f"features: cannot offer {', '.join(feature_names(extra))} "
                              f"(supported: {', '.join(feature_names(supported))})")
        offered = conf["features"] | offloads
    if not conf["mrg_rxbuf"]:
        offered &= ~(1 << Feature.NET_MRG_RXBUF)
    if not conf["packed"]:
        offered &= ~(1 << Feature.RING_PACKED)
    if not conf["in_order"]:
        offered &= ~(1 << Feature.IN_ORDER)
    if conf["queues"] > 1:
        offered |= MQ_FEATURES  # the driver cannot find the other pairs without them
    return offered


class VhostUser(App):
    """A virtio-net device whose driver is at the other end of a vhost-user
    socket. ``input``: packets for the guest; ``output``: packets from it
    (queue pair 0; pair k: ``input<k>``, ``output<k>``)."""

    inputs, outputs = INPUTS, OUTPUTS
    link_types = (1,)  # parses Ethernet frames (core/linktypes.py)

    config = {
        "socket_path": Param(str, doc="Unix socket of the vhost-user connection"),
        "is_server": Param(bool, default=True,
                           doc="listen at socket_path (else connect to it, and reconnect)"),
        "mrg_rxbuf": Param(bool, default=True,
                           doc="offer MRG_RXBUF: packets may span guest buffers (jumbo frames)"),
        "packed": Param(bool, default=True,
                        doc="offer RING_PACKED: packed rings when the frontend asks"),
        "in_order": Param(bool, default=True,
                          doc="offer IN_ORDER: a packed ring's guest TX batch is handed "
                              "back as one used descriptor"),
        "features": Param(int, default=None,
                          doc="virtio feature mask to offer (default: all supported)"),
        "qsize": Param(int, default=MAX_QUEUE_SIZE,
                       doc="largest queue size accepted, up to 32768 (a split ring's is "
                           "a power of two at most this, a packed ring's any size)"),
        "reconnect_interval": Param(float, default=0.5,
                                    doc="client mode: seconds between connection attempts"),
        "queues": Param(queue_pairs, default=1,
                        doc="queue pairs (above 1: offer MQ and a control queue)"),
        "checksum_offload": Param(bool, default=False,
                                  doc="offer VIRTIO_NET_F_CSUM: finish the guest's partial "
                                      "TCP/UDP checksums"),
        "tso": Param(bool, default=False,
                     doc="offer HOST_TSO4/TSO6/ECN: cut the guest's large TCP frames "
                         "into gso_size segments (needs checksum_offload)"),
        "serve": Param(list, default=None,
                       doc="queue pairs moved by this app (default: all); the others "
                           "by a vhost.VhostQueue each"),
    }
    counters = COUNTERS

    @classmethod
    def counters_for(cls, conf: dict) -> tuple[str, ...]:
        """Pair 0's counters, and pair k's only for the ``queues`` configured."""
        return counters_for_queues(conf.get("queues", 1))

    def __init__(self, conf: dict) -> None:
        self.conf = conf
        if not conf["socket_path"]:
            raise ConfigError("socket_path: must not be empty")
        q = conf["qsize"]
        if not 0 < q <= MAX_QUEUE_SIZE:
            raise ConfigError(f"qsize: {q} is not in 1..{MAX_QUEUE_SIZE}")
        if conf["reconnect_interval"] <= 0:
            raise ConfigError("reconnect_interval: must be above 0 seconds")
        stats = tuple(s for k in range(conf["queues"]) for s in ring_stats(self.stats, k))
        self.device = VhostDevice(_offer(conf), stats, q)
        rings = self.device.vrings
        self.pairs = tuple(QueuePair(k, rings[2 * k], rings[2 * k + 1], self.stats)
                           for k in _served(conf))
        self.lent: dict[int, App] = {}
        self.channel: Channel | None = None
        self.last_error = ""
        self.endpoint = self._endpoint(conf)
        self.remote = self._remote_queues(conf)
        owners[conf["socket_path"]] = self

    def _remote_queues(self, conf: dict) -> RemoteQueues | None:
        """The handoff of the pairs this app does not serve, to VhostQueue
        apps of other processes (None when it serves them all)."""
        lendable = set(range(conf["queues"])) - {p.index for p in self.pairs}
        if not lendable:
            return None
        path = handoff_path(conf["socket_path"])
        try:
            listener = HandoffListener(path)
        except OSError as e:
            self.endpoint.close()
            raise ConfigError(f"socket_path: cannot listen for queue workers at {path!r}: "
                              f"{e}") from None
        return RemoteQueues(self.device, self.stats, lendable, listener)

    # -- queue pairs served by VhostQueue apps --------------------------------

    def lend(self, pair: int, borrower: App) -> QueuePair:
        """Pair ``pair``'s rings for ``borrower`` (a VhostQueue) to move, its
        counters from now on; ConfigError if this app serves it or another
        app has it."""
        n = self.device.queue_pairs
        if not 0 <= pair < n:
            raise ConfigError(f"queue: {pair} is not a queue pair of {self.name} (queues: {n})")
        if any(p.index == pair for p in self.pairs):
            raise ConfigError(f"queue: {self.name} serves pair {pair} itself (leave it out "
                              "of its serve list)")
        if self.lent.get(pair, borrower) is not borrower:
            raise ConfigError(f"queue: pair {pair} of {self.name} is served by "
                              f"{self.lent[pair].name} already")
        if pair in self.remote.remotes:
            raise ConfigError(f"queue: pair {pair} of {self.name} is served by another "
                              "process already")
        self.remote.local.add(pair)
        rx, tx = self.device.vrings[2 * pair], self.device.vrings[2 * pair + 1]
        for vring, stats in zip((rx, tx), ring_stats(borrower.stats, 0), strict=True):
            vring.set_stats(stats)
        self.lent[pair] = borrower
        return QueuePair(pair, rx, tx, borrower.stats, named_as=0)

    def give_back(self, pair: int, borrower: App) -> None:
        """``borrower`` no longer serves ``pair``: it counts here again."""
        if self.lent.get(pair) is borrower:
            del self.lent[pair]
            self.remote.local.discard(pair)
            rings = self.device.vrings[2 * pair:2 * pair + 2]
            for vring, stats in zip(rings, ring_stats(self.stats, pair), strict=True):
                vring.set_stats(stats)

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
        check_ports((*self.input, *self.output), (p.index for p in self.pairs))
        for k, pair in enumerate(self.pairs):
            in_port, out_port = port_names(k)
            i, o = self.input.get(in_port), self.output.get(out_port)
            pair.link(i.c if i is not None else ffi.NULL, o.c if o is not None else ffi.NULL)

    # -- data path: one C call per queue ------------------------------------

    def pull(self) -> None:
        for pair in self.pairs:
            pair.pull()

    def push(self) -> None:
        device = self.device
        for pair in self.pairs:
            pair.push(device.pair_active(pair.index))

    # -- control path: the socket --------------------------------------------

    def tick(self) -> None:
        if self.remote is not None:
            self.remote.poll()
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
        ctrl = self.device.ctrl
        if ctrl is not None and ctrl.vring.started:
            ctrl.serve(self.device.features, self.stats)

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
        if self.remote is None:
            self._handle(msg)
            return
        self.remote.before(msg)
        try:
            self._handle(msg)
        finally:
            self.remote.after()

    def _handle(self, msg: Message) -> None:
        self.stats.add("requests")
        log.debug("%s: %s %s fds=%s", self.name, msg.request.name, msg.payload, msg.fds)
        spec = REQUESTS[msg.request]
        try:
            payload = self.device.handle(msg)
        except DeviceError as e:
            self.stats.add("protocol_errors")
            if isinstance(e, RingIndexError):
                self.stats.add("bad_ring_index")
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
        if self.remote is not None:
            self.remote.reset()
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
        for k, app in sorted(self.lent.items()):
            lines.append(f"  pair {k}: served by {app.name}")
        if self.remote is not None:
            lines += self.remote.describe()
        for pair in self.pairs:
            tag = f"pair {pair.index} " if d.queue_pairs > 1 else ""
            if not d.pair_active(pair.index):
                tag += "(not in use by the driver) "
            for name, v in (("rx (to guest)", pair.rx), ("tx (from guest)", pair.tx)):
                q = v.q
                lines.append(f"  {tag}{name}: {pair.state(v)}, size {v.num}, "
                             f"avail {q.last_avail}, used {q.used_idx}, "
                             f"{v.stats.packets:,} packets" + ", packed ring" * v.packed)
        if d.ctrl is not None:
            lines.append(f"  control queue: {'running' if d.ctrl.vring.started else 'not given'}"
                         f", pairs in use {d.ctrl.pairs_in_use()} of {d.queue_pairs}"
                         + (f"; {d.ctrl.last_error}" if d.ctrl.last_error else ""))
        if self.last_error:
            lines.append(f"  last error: {self.last_error}")
        return "\n".join(lines)

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.remote is not None:
            self.remote.close()  # its workers stop their rings at end of file
        self.device.reset()
        self.endpoint.close()
        if owners.get(self.conf["socket_path"]) is self:
            del owners[self.conf["socket_path"]]
