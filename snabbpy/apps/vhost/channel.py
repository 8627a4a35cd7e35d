"""The socket side of VhostUser: listen or connect, then carry messages.

``Listener`` (server mode) and ``Connector`` (client mode) each hand out a
connected, non-blocking Unix socket when one is there (``poll()``), never
waiting. ``Channel`` wraps a connected socket and the sans-I/O backend
codec: ``read()`` returns the requests that arrived, ``send()`` writes a
reply. Nothing here knows what a request means.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Callable

from snabbpy.lib.vhost_user import Backend, Message
from snabbpy.lib.vhost_user.socket_io import recv_chunk, send_message


class Listener:
    """A listening socket at ``path``; a stale socket file there is replaced."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                if _in_use(path):
                    raise OSError(f"another process is listening at {path}")
                os.unlink(path)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.bind(path)
            self.sock.listen(4)
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)

    def poll(self) -> socket.socket | None:
        """A new connection, or None."""
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return None
        conn.setblocking(False)
        return conn

    def close(self) -> None:
        """Stops listening and removes the socket file."""
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _in_use(path: str) -> bool:
    """True when a server answers at ``path`` (else the file is stale)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


class Connector:
    """Connects to a server at ``path``, trying again every ``interval``
    seconds (on the injectable ``clock``) while it is not there."""

    def __init__(self, path: str, interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path, self.interval, self.clock = path, interval, clock
        self._next_try = 0.0
        self.attempts = 0

    def poll(self) -> socket.socket | None:
        """A connected socket, or None (not due, or the server is not there)."""
        now = self.clock()
        if now < self._next_try:
            return None
        self._next_try = now + self.interval
        self.attempts += 1
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            return None
        sock.setblocking(False)
        return sock

    def close(self) -> None:
        """Nothing to release: a client holds no socket while unconnected."""


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
