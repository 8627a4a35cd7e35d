"""The connection of VhostUser: a connected socket carrying messages.

The socket comes from ``snabbpy.lib.vhost_user.sockets`` (a ``Listener``
in server mode, a ``Connector`` in client mode). ``Channel`` wraps it and
the sans-I/O backend codec: ``read()`` returns the requests that arrived,
``send()`` writes a reply. Nothing here knows what a request means.
"""

from __future__ import annotations

import os
import socket

from snabbpy.lib.vhost_user import Backend, Message
from snabbpy.lib.vhost_user.socket_io import recv_chunk, send_message


class Channel:
    """One connection: the socket and the codec that decodes its requests."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.backend = Backend()
        self.closed = False

    def read(self) -> list[Message]:
        """The requests that arrived, oldest first; sets ``closed`` at EOF.
        VhostUserProtocolError when the peer broke the protocol."""
        messages: list[Message] = []
        while not self.closed:
            try:
                data, fds = recv_chunk(self.sock, self.backend.wanted)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionError:
                data, fds = b"", []
            if not data:
                for fd in fds:
                    os.close(fd)
                self.closed = True
                break
            messages.extend(self.backend.receive(data, fds))
        return messages

    def send(self, data: bytes) -> None:
        """Writes one encoded reply (OSError when the peer is gone)."""
        if data:
            send_message(self.sock, data)

    def close(self) -> None:
        """Closes the socket and any fds held for an incomplete request."""
        self.backend.close()
        self.sock.close()
        self.closed = True
