"""The vhost-user frontend transport: a virtio-net device behind a Unix
socket (what DPDK calls virtio-user), so vguest runs with no VM at all.

The protocol itself is the sans-I/O ``Frontend`` of snabbpy.lib.vhost_user;
this module owns the socket, the kick/call eventfds and the memory table.
The memory table announces every DMA chunk (its memfd, guest_phys_addr = the
chunk's DMA address, userspace_addr = its virtual address) and is sent again
when a new chunk appears. vhost-user has no status register and no config
space for virtio-net, so both are kept here: status as written by the
driver (FEATURES_OK only if the backend acknowledged the features), config
space holding ``mac``, link up and the backend's queue pairs (GET_QUEUE_NUM
with the MQ protocol feature), like DPDK's virtio-user. Like it and QEMU,
the transport sets the queue pairs in use itself (every ring set up is
enabled with SET_VRING_ENABLE) unless ``control_queue``: then the control
ring goes to the backend, which must serve it (snabbpy's VhostUser does).
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Any

from snabbpy.apps.vguest.transport import Transport, TransportError
from snabbpy.core.memory import DMAMemory, dma
from snabbpy.lib.vhost_user import (
    MEMORY_BASELINE_NREGIONS,
    Frontend,
    MemoryRegion,
    MemoryTable,
    ProtocolFeature,
    Request,
    VhostUserProtocolError,
    VringAddr,
    VringFile,
    VringState,
)
from snabbpy.lib.vhost_user.socket_io import recv_chunk, send_message
from snabbpy.lib.vhost_user.sockets import Connector, Listener, SocketPathError
from snabbpy.lib.virtio import DeviceStatus, Feature, feature_mask

PROTOCOL_FEATURES_BIT = 1 << Feature.VHOST_USER_PROTOCOL_FEATURES
#: Features this transport provides itself (config space), not the backend.
EMULATED = feature_mask(Feature.NET_MAC, Feature.NET_STATUS)
MAX_QUEUE_SIZE = 32768
DEFAULT_MAC = b"\x52\x54\x00\x00\x00\x01"
#: SET_VRING_BASE of a new packed ring: avail and used slot 0, wrap counters 1.
PACKED_START = 0x80008000


def connect(path: str, is_server: bool, timeout: float) -> socket.socket:
    """A connected stream socket: we connect to ``path`` (retrying until
    ``timeout`` while the backend starts), or listen on it and accept one."""
    if is_server:
        return _accept_one(path, timeout)
    try:
        return Connector(path, interval=0.05).connect(timeout)
    except OSError as e:
        raise TransportError(f"vhost-user {path}: cannot connect: {e.strerror}") from None


def _accept_one(path: str, timeout: float) -> socket.socket:
    """Listens on ``path`` and accepts one backend within ``timeout`` s."""
    try:
        listener = Listener(path, backlog=1)
    except SocketPathError as e:
        raise TransportError(f"vhost-user {path}: {e}") from None
    except OSError as e:
        raise TransportError(f"vhost-user {path}: cannot listen: {e.strerror}") from None
    try:
        return listener.accept(timeout)
    except TimeoutError:
        raise TransportError(f"vhost-user {path}: no backend connected "
                             f"in {timeout:g}s") from None
    finally:
        listener.close()


class VhostUserTransport(Transport):
    """vhost-user frontend over the socket at ``path``."""

    def __init__(self, path: str, is_server: bool = False, mac: bytes = DEFAULT_MAC,
                 timeout: float = 30.0, memory: DMAMemory = dma,
                 control_queue: bool = False, multiqueue: bool = False,
                 sock: socket.socket | None = None) -> None:
        self.name = f"vhost-user {path}"
        self.multiqueue = multiqueue  # ask for the MQ protocol feature
        self.sets_queue_pairs = not control_queue
        self.queue_pairs = 1
        self.path, self.mac, self.memory = path, mac, memory
        self.status = 0
        self.features_ok = False
        self.packed = False
        self.kick: dict[int, int] = {}
        self.call: dict[int, int] = {}
        self.started: set[int] = set()
        self.table_sent = False
        # ``sock``: a backend already connected (vguest reconnecting).
        self.sock = sock if sock is not None else connect(path, is_server, timeout)
        self.sock.settimeout(timeout)
        self.proto = Frontend()
        self.protocol = 0
        try:
            self._handshake()
        except TransportError:
            self.sock.close()  # nobody else holds it: the caller gets no transport
            raise
        self.memory.on_new_chunk(self._new_chunk)

    def _handshake(self) -> None:
        """Takes the backend (SET_OWNER) and learns what it offers."""
        self.request(Request.SET_OWNER)
        self.offered = self.request(Request.GET_FEATURES)
        if self.offered & PROTOCOL_FEATURES_BIT:
            offered = self.request(Request.GET_PROTOCOL_FEATURES)
            mq = [ProtocolFeature.MQ] if self.multiqueue else []
            wanted = feature_mask(ProtocolFeature.REPLY_ACK, *mq)
            self.protocol = offered & wanted
            self.request(Request.SET_PROTOCOL_FEATURES, self.protocol)
            if self.protocol >> ProtocolFeature.MQ & 1:
                n = self.request(Request.GET_QUEUE_NUM)
                if not 1 <= n <= 0x8000:
                    raise TransportError(f"{self.name}: GET_QUEUE_NUM says {n} queue pairs")
                self.queue_pairs = n

    # -- I/O -------------------------------------------------------------

    def request(self, request: Request, payload: Any = None, fds: tuple[int, ...] = (),
                ack: bool = False) -> Any:
        """Sends one request; returns the reply's payload if one comes. With
        ``ack`` (and REPLY_ACK negotiated) a refusal raises TransportError."""
        ack = ack and bool(self.protocol >> ProtocolFeature.REPLY_ACK & 1)
        try:
            send_message(self.sock, self.proto.send(request, payload, fds, need_reply=ack), fds)
            replies: list = []
            while self.proto.waiting:
                data, received = recv_chunk(self.sock)
                if not data:
                    raise TransportError(f"{self.name}: backend closed the connection "
                                         f"during {request.name}")
                replies += self.proto.receive(data, received)
        except (OSError, VhostUserProtocolError) as e:
            raise TransportError(f"{self.name}: {request.name} failed: {e}") from None
        if not replies:
            return None
        if ack and not Frontend.ack_ok(replies[0]):
            raise TransportError(f"{self.name}: backend refused {request.name}")
        return replies[0].payload

    # -- Transport -------------------------------------------------------

    def reset(self) -> None:
        for queue in sorted(self.started):
            if self.offered & PROTOCOL_FEATURES_BIT:
                self.request(Request.SET_VRING_ENABLE, VringState(queue, 0))
            self.request(Request.GET_VRING_BASE, VringState(queue, 0))
        self.started.clear()
        self.status = 0
        self.features_ok = False

    def get_status(self) -> int:
        if not self.features_ok:
            return self.status & ~DeviceStatus.FEATURES_OK
        return self.status

    def set_status(self, status: int) -> None:
        self.status = status

    def get_features(self) -> int:
        return (self.offered & ~PROTOCOL_FEATURES_BIT) | EMULATED

    def set_features(self, features: int) -> None:
        wanted = (features & ~EMULATED) | (self.offered & PROTOCOL_FEATURES_BIT)
        try:
            self.request(Request.SET_FEATURES, wanted, ack=True)
            self.features_ok = True
            self.packed = bool(features >> Feature.RING_PACKED & 1)
        except TransportError:
            self.features_ok = False

    def max_queue_size(self, queue: int) -> int:
        rings = 2 * self.queue_pairs + (not self.sets_queue_pairs)  # + the control ring
        return MAX_QUEUE_SIZE if 0 <= queue < rings else 0

    def set_queue_size(self, queue: int, size: int) -> None:
        self.request(Request.SET_VRING_NUM, VringState(queue, size), ack=True)

    def set_queue_addresses(self, queue: int, desc: int, avail: int, used: int) -> None:
        if not self.table_sent:
            self.send_memory_table()
        # The rings are given in our own (userspace) addresses.
        va = self._virtual
        addr = VringAddr(queue, 0, va(desc), va(used), va(avail))
        self.request(Request.SET_VRING_ADDR, addr, ack=True)

    def enable_queue(self, queue: int) -> None:
        # Packed: both positions at slot 0 with their wrap counters at 1.
        base = PACKED_START if self.packed else 0
        self.request(Request.SET_VRING_BASE, VringState(queue, base), ack=True)
        for table, request in ((self.kick, Request.SET_VRING_KICK),
                               (self.call, Request.SET_VRING_CALL)):
            if queue not in table:
                table[queue] = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self.request(request, VringFile(queue), (table[queue],))
        if self.offered & PROTOCOL_FEATURES_BIT:
            self.request(Request.SET_VRING_ENABLE, VringState(queue, 1), ack=True)
        self.started.add(queue)

    def notify(self, queue: int) -> None:
        try:
            os.eventfd_write(self.kick[queue], 1)
        except BlockingIOError:
            pass  # the counter is saturated: the backend is already woken

    def read_config(self, offset: int, length: int) -> bytes:
        space = self.mac + struct.pack("<HH", 1, self.queue_pairs)  # link up, queue pairs
        return space[offset:offset + length]

    def close(self) -> None:
        self.memory.remove_listener(self._new_chunk)
        self.sock.close()
        for fd in [*self.kick.values(), *self.call.values()]:
            os.close(fd)
        self.kick.clear()
        self.call.clear()

    # -- memory table ----------------------------------------------------

    def send_memory_table(self) -> None:
        """Announces DMA memory to the backend (SET_MEM_TABLE): one region per
        run of chunks of one memfd, so the default memory is one region however
        much it has grown."""
        chunks = self.memory.regions()
        if len(chunks) > MEMORY_BASELINE_NREGIONS:
            raise TransportError(f"{self.name}: {len(chunks)} DMA memory regions, vhost-user "
                                 f"announces at most {MEMORY_BASELINE_NREGIONS}")
        regions = tuple(MemoryRegion(c.dma_address, c.size, c.address, c.fd_offset)
                        for c in chunks)
        fds = tuple(c.fd for c in chunks)
        self.request(Request.SET_MEM_TABLE, MemoryTable(regions), fds, ack=True)
        self.table_sent = True

    def _new_chunk(self, _chunk: Any) -> None:
        if self.table_sent:
            self.send_memory_table()

    def _virtual(self, device_address: int) -> int:
        for c in self.memory.chunks:
            if c.dma_address <= device_address < c.dma_address + c.size:
                return c.address + (device_address - c.dma_address)
        raise TransportError(f"{self.name}: ring address {device_address:#x} not in DMA memory")
