"""A scripted vhost-user backend for the vguest driver's tests.

``ScriptedBackend`` answers every request of one connection in a thread
(the codec's ``Backend``) and records them, without moving packets: what
vguest puts on its transmit rings stays in flight. It listens on ``path``
(vguest as client) or, with ``client=True``, connects to it (vguest as
server); ``hang_up()`` closes the connection as a backend that dies does.
"""

from __future__ import annotations

import os
import socket
import threading

from snabbpy.lib.vhost_user import Backend, ProtocolFeature, Request, VringState
from snabbpy.lib.vhost_user.socket_io import recv_chunk, send_message
from snabbpy.lib.vhost_user.sockets import Connector, remove_stale_socket
from snabbpy.lib.virtio import Feature, feature_mask

R = Request
OFFER = feature_mask(Feature.VERSION_1, Feature.NET_MRG_RXBUF, Feature.ANY_LAYOUT,
                     Feature.VHOST_USER_PROTOCOL_FEATURES)
#: What a backend with ``queue_pairs`` above 1 offers on top.
MQ_OFFER = feature_mask(Feature.NET_MQ, Feature.NET_CTRL_VQ)


class ScriptedBackend(threading.Thread):
    """Serves one vhost-user connection on ``path``; records each request.

    ``refuse``: requests acked as refused; ``hang_up_on``: a request on
    which the backend closes the connection instead of answering.
    """

    def __init__(self, path: str, refuse: set[Request] = frozenset(), client: bool = False,
                 queue_pairs: int = 1, hang_up_on: Request | None = None) -> None:
        super().__init__(daemon=True)
        self.refuse, self.seen, self.kick_fds = refuse, [], {}
        self.queue_pairs, self.hang_up_on = queue_pairs, hang_up_on
        self.listener = self.sock = None
        if client:
            try:  # at once when the server already listens, else in the thread
                self.sock = Connector(path).connect(0)
            except OSError:
                self.path = path
        else:
            remove_stale_socket(path)
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(path)
            self.listener.listen(1)
        self.start()

    def run(self) -> None:
        if self.sock is None and self.listener is None:
            self.sock = Connector(self.path, 0.01).connect(30)
        if self.sock is None:
            self.sock, _ = self.listener.accept()
        codec = Backend()
        with self.sock as sock:
            try:
                while True:
                    data, fds = recv_chunk(sock)
                    if not data:
                        return
                    for msg in codec.receive(data, fds):
                        self.seen.append(msg)
                        if msg.request == self.hang_up_on:
                            return
                        send_message(sock, self.answer(codec, msg))
            except OSError:
                return  # hung up by hang_up()

    def answer(self, codec: Backend, msg) -> bytes:
        """The reply (or ack) to ``msg``; keeps the kick eventfds."""
        if msg.request == R.SET_VRING_KICK:
            self.kick_fds[msg.payload.index] = msg.fds[0]
        else:
            for fd in msg.fds:
                os.close(fd)
        if msg.request == R.GET_FEATURES:
            return codec.reply(msg, OFFER | (MQ_OFFER if self.queue_pairs > 1 else 0))
        if msg.request == R.GET_PROTOCOL_FEATURES:
            return codec.reply(msg, 1 << ProtocolFeature.REPLY_ACK | 1 << ProtocolFeature.MQ)
        if msg.request == R.GET_QUEUE_NUM:
            return codec.reply(msg, self.queue_pairs)
        if msg.request == R.GET_VRING_BASE:
            return codec.reply(msg, VringState(msg.payload.index, 0))
        return codec.ack(msg, ok=msg.request not in self.refuse)

    def requests(self) -> list[Request]:
        """The requests received so far, in order."""
        return [m.request for m in self.seen]

    def hang_up(self) -> None:
        """Closes the connection (the backend dies) and waits for the thread."""
        if self.sock is not None and self.sock.fileno() != -1:
            self.sock.shutdown(socket.SHUT_RDWR)
        self.join()
        self.close()

    def close(self) -> None:
        """Stops listening (the socket file stays, as a dead server's does)."""
        if self.listener is not None:
            self.listener.close()
        for fd in self.kick_fds.values():
            os.close(fd)
        self.kick_fds.clear()
