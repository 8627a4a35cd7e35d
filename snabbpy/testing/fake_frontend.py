"""A scripted vhost-user frontend for testing VhostUser in one thread.

``FakeFrontend`` speaks the protocol with the sans-I/O ``Frontend`` codec
over a socket to a VhostUser app, and shares ``FakeMemory`` (memfd backed)
holding ``FakeQueue`` rings (0: guest RX, 1: guest TX; ``rings`` more for a
multiqueue device: 2k and 2k+1 for pair k, then the control queue), or with
``packed`` ``FakePackedQueue`` rings (RING_PACKED asked for). Because the
app runs in the same thread, waiting for a reply calls ``pump`` (the app's
``tick``) until the reply is there.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from snabbpy.lib.vhost_user import (
    Frontend,
    MemoryRegion,
    MemoryTable,
    Message,
    ProtocolFeature,
    Request,
    VringAddr,
    VringFile,
    VringState,
)
from snabbpy.lib.vhost_user.socket_io import recv_chunk, send_message
from snabbpy.lib.virtio.constants import Feature, feature_mask
from snabbpy.testing.fake_guest import USER_OFFSET, FakeMemory, FakeQueue
from snabbpy.testing.fake_packed import PACKED_START, FakePackedQueue

R = Request
WANTED = feature_mask(Feature.VERSION_1, Feature.NET_MRG_RXBUF, Feature.ANY_LAYOUT,
                      Feature.RING_INDIRECT_DESC, Feature.VHOST_USER_PROTOCOL_FEATURES)


class FakeFrontend:
    """The driver end of one vhost-user connection, driven step by step."""

    def __init__(self, sock: socket.socket, pump: Callable[[], None], qsize: int = 256,
                 memory_size: int = 4 << 20, rings: int = 2, packed: bool = False) -> None:
        self.sock, self.pump, self.packed = sock, pump, packed
        self.codec = Frontend()
        self.mem = FakeMemory([(0x100000, memory_size)], shared=True)
        queue = FakePackedQueue if packed else FakeQueue
        self.rings = [queue(self.mem, qsize) for _ in range(rings)]
        self.calls = [os.eventfd(0, os.EFD_NONBLOCK) for _ in self.rings]
        self.features = 0

    def request(self, request: Request, payload: object = None, fds: tuple[int, ...] = (),
                need_reply: bool = False) -> Message | None:
        """Sends one request; returns its reply (None when none is due)."""
        send_message(self.sock, self.codec.send(request, payload, fds, need_reply), fds)
        if not self.codec.waiting:
            self.pump()
            return None
        return self._wait_reply()

    def _wait_reply(self, rounds: int = 1000) -> Message:
        self.sock.setblocking(False)
        for _ in range(rounds):
            self.pump()
            try:
                data, _fds = recv_chunk(self.sock)
            except BlockingIOError:
                continue
            if not data:
                raise ConnectionError("backend closed the connection")
            replies = self.codec.receive(data)
            if replies:
                return replies[0]
        raise TimeoutError(f"no reply to {self.codec.waiting[0].name}")

    def negotiate(self, wanted: int = WANTED) -> int:
        """GET/SET_FEATURES (and protocol features when offered); returns
        the features set (RING_PACKED added to ``wanted`` when ``packed``)."""
        wanted |= self.packed << Feature.RING_PACKED
        offered = self.request(R.GET_FEATURES).payload
        self.features = offered & wanted
        self.request(R.SET_FEATURES, self.features)
        if self.features >> Feature.VHOST_USER_PROTOCOL_FEATURES & 1:
            self.request(R.GET_PROTOCOL_FEATURES)
            self.request(R.SET_PROTOCOL_FEATURES, 1 << ProtocolFeature.REPLY_ACK)
        self.request(R.SET_OWNER)
        return self.features

    def memory_table(self) -> MemoryTable:
        """The SET_MEM_TABLE payload describing ``mem`` (fds: ``mem.fds``)."""
        return MemoryTable(tuple(MemoryRegion(r.guest_phys, r.size, r.guest_phys + USER_OFFSET, 0)
                                 for r in self.mem.regions))

    def setup_ring(self, index: int, base: int | None = None) -> None:
        """Sends everything ring ``index`` needs and enables it; ``base``:
        where it starts (default: a new ring's start)."""
        ring = self.rings[index]
        if base is None:
            base = PACKED_START if self.packed else 0
        self.request(R.SET_VRING_CALL, VringFile(index), (self.calls[index],))
        self.request(R.SET_VRING_NUM, VringState(index, ring.size))
        self.request(R.SET_VRING_BASE, VringState(index, base))
        self.request(R.SET_VRING_ADDR, VringAddr(index, 0, ring.desc + USER_OFFSET,
                                                 ring.used + USER_OFFSET,
                                                 ring.avail + USER_OFFSET))
        kick = os.eventfd(0, os.EFD_NONBLOCK)
        self.request(R.SET_VRING_KICK, VringFile(index), (kick,))
        os.close(kick)
        if self.features >> Feature.VHOST_USER_PROTOCOL_FEATURES & 1:
            self.request(R.SET_VRING_ENABLE, VringState(index, 1), need_reply=True)

    def connect(self, wanted: int = WANTED) -> None:
        """The whole setup: features, memory, both rings."""
        self.negotiate(wanted)
        self.request(R.SET_MEM_TABLE, self.memory_table(), tuple(self.mem.fds),
                     need_reply=True)
        for index in range(len(self.rings)):
            self.setup_ring(index)

    def close(self) -> None:
        """Closes the socket and the call eventfds."""
        self.sock.close()
        for fd in self.calls:
            os.close(fd)
        self.calls = []
        self.mem.close()
