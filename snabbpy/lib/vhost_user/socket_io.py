"""The only I/O of the vhost-user package: one message out, one chunk in,
with fds passed as SCM_RIGHTS ancillary data.  Both apps (VhostUser and
vguest's vhost-user transport) use these two calls around the sans-I/O
``Frontend`` / ``Backend`` objects.
"""

from __future__ import annotations

import array
import os
import socket
from collections.abc import Sequence
from typing import Protocol

from .constants import MAX_FDS
from .messages import Message

RECV_SIZE = 4096  # more than the largest message (12 + 268 bytes)


class Endpoint(Protocol):
    """A ``Frontend`` or ``Backend``: something that decodes what it receives."""

    @property
    def wanted(self) -> int: ...

    def receive(self, data: bytes, fds: Sequence[int] = ()) -> list[Message]: ...



def send_message(sock: socket.socket, data: bytes, fds: Sequence[int] = ()) -> None:
    """Send one encoded message, attaching ``fds`` to its first byte.

    The fds ride with the first ``sendmsg``; if the kernel takes only part of
    the bytes, the rest follows without fds, as the receiver expects.
    """
    ancillary = []
    if fds:
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
    view = memoryview(data)
    sent = sock.sendmsg([view], ancillary)
    while sent < len(view):
        view = view[sent:]
        sent = sock.sendmsg([view])


def recv_chunk(sock: socket.socket, size: int = RECV_SIZE) -> tuple[bytes, list[int]]:
    """Receive up to ``size`` bytes and any fds that came with them.

    Where fds may come (a backend reading requests), pass the decoder's
    ``wanted`` as ``size``, or use ``recv_messages``: reading past the end of
    a message could bring a later message's fds with this one's bytes.
    Replies carry no fds, so a frontend may read any size.

    Returns ``(b"", [])`` when the peer closed the connection.  Fds beyond
    what a vhost-user message may carry are closed, and a truncated control
    message (the kernel dropped fds) raises ``OSError``: either means the
    peer is misbehaving and the stream cannot be trusted.
    """
    fd_size = array.array("i").itemsize
    data, ancdata, msg_flags, _addr = sock.recvmsg(size, socket.CMSG_SPACE(MAX_FDS * fd_size))
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            received = array.array("i")
            received.frombytes(payload[: len(payload) - len(payload) % fd_size])
            fds.extend(received)
    if msg_flags & socket.MSG_CTRUNC:
        for fd in fds:
            os.close(fd)
        raise OSError("vhost-user: control message truncated (peer sent too many fds)")
    return data, fds


def recv_messages(sock: socket.socket, endpoint: Endpoint) -> list[Message]:
    """Block until ``endpoint`` has decoded at least one message; return them.

    Reads message by message (``endpoint.wanted``) so fds stay with their
    message.  Returns ``[]`` when the peer closed the connection.
    """
    while True:
        data, fds = recv_chunk(sock, endpoint.wanted)
        if not data:
            for fd in fds:
                os.close(fd)
            return []
        messages = endpoint.receive(data, fds)
        if messages:
            return messages
