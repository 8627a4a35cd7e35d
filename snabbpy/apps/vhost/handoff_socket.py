"""The socket of the queue handoff: a Unix SOCK_SEQPACKET socket beside the
device's vhost-user socket (``handoff_path``), one datagram per message with
its fds (SCM_RIGHTS). A sequenced-packet socket keeps message boundaries
and the fds with their message, so no framing is needed.

``HandoffListener`` is the owner's end (it accepts only processes of its own
user, and never itself); ``connect`` the worker's; ``Link`` one connection.
"""

from __future__ import annotations

import os
import socket
import struct

from snabbpy.lib.vhost_user.sockets import Listener

from .handoff import MAX_FDS, MAX_MESSAGE, HandoffError, close_fds, decode, encode


def handoff_path(socket_path: str) -> str:
    """Where the owner of ``socket_path`` listens for its VhostQueues."""
    return socket_path + ".queues"


class PeerGone(Exception):
    """The other end of a handoff link closed it or died."""


class Link:
    """One handoff connection: ``send()`` and ``receive()`` whole messages."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, msg: dict, fds=()) -> None:
        """Sends ``msg`` with ``fds`` (they stay the caller's); PeerGone
        when the peer is gone."""
        data = encode(msg, fds)
        try:
            socket.send_fds(self.sock, [data], list(fds)) if fds else self.sock.send(data)
        except OSError as e:
            raise PeerGone(str(e)) from None

    def receive(self, timeout: float | None = 0.0) -> dict | None:
        """The next message (its fds in ``msg["fds"]``, now ours), waiting up
        to ``timeout`` seconds (None: forever); None if none came. PeerGone
        at end of file, HandoffError for a malformed message."""
        self.sock.settimeout(timeout)
        try:
            data, fds, flags, _ = socket.recv_fds(self.sock, MAX_MESSAGE + 1, MAX_FDS)
        except (BlockingIOError, TimeoutError, InterruptedError):
            return None
        except OSError as e:
            raise PeerGone(str(e)) from None
        if not data:
            close_fds(fds)
            raise PeerGone("closed")
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            close_fds(fds)
            raise HandoffError("handoff message too long or with too many fds")
        msg = decode(data, fds)
        msg["fds"] = list(fds)
        return msg

    def close(self) -> None:
        """Closes the connection."""
        self.sock.close()


def peer_credentials(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of ``sock``."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", creds)
    return pid, uid


class HandoffListener(Listener):
    """The owner's listening socket at ``path``, mode 0600."""

    def __init__(self, path: str) -> None:
        super().__init__(path, backlog=8, kind=socket.SOCK_SEQPACKET, umask=0o177)

    def poll(self) -> Link | None:
        """A new connection from another process of this user, or None.
        HandoffError for one that is refused (it is closed)."""
        conn = super().poll()
        if conn is None:
            return None
        pid, uid = peer_credentials(conn)
        if uid != os.getuid() or pid == os.getpid():
            conn.close()
            raise HandoffError(f"handoff connection from pid {pid} uid {uid} refused "
                               "(another user, or this process itself)")
        return Link(conn)


def connect(path: str) -> Link | None:
    """A link to the owner listening at ``path``, or None when it is not
    there (yet)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    return Link(sock)
