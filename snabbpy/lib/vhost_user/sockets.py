"""Both socket ends of a vhost-user connection: a Unix stream socket at a path.

``Listener`` (the server end) binds the path, first removing a socket file
left there by a server that is gone, but never a live server's socket or a
file that is not a socket: the stale-socket rule, written once here.
``Connector`` (the client end) connects, trying again while the server is
not there yet. Each offers a non-blocking ``poll()`` for an app's tick
(VhostUser) and a waiting call for a driver that blocks until it is
connected (vguest's vhost-user transport).
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import time
from collections.abc import Callable


class SocketPathError(OSError):
    """The path holds something that must not be replaced: a live server's
    socket, or a file that is not a socket. The message says which."""


#: Errors meaning "no server there yet": a client tries again.
NOT_THERE = (FileNotFoundError, ConnectionRefusedError)


def remove_stale_socket(path: str, kind: int = socket.SOCK_STREAM) -> None:
    """Removes the socket file at ``path`` when no server listens on it (one
    that exited left it); nothing there is fine. Anything else raises
    SocketPathError and stays: not a socket (a symlink included), a server
    answering, or a probe that fails for another reason than a refusal.
    ``kind``: the socket type a server there would have."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise SocketPathError("exists and is not a socket; not replacing it")
    with socket.socket(socket.AF_UNIX, kind) as probe:
        probe.setblocking(False)  # a live server's full backlog must not block us
        err = probe.connect_ex(path)
    if err in (0, errno.EAGAIN):
        raise SocketPathError("another process is listening there")
    if err != errno.ECONNREFUSED:
        raise SocketPathError(f"cannot tell whether a server listens there: {os.strerror(err)}")
    os.unlink(path)


class Listener:
    """A listening socket at ``path`` (a stale socket file there is replaced);
    ``kind`` its type, ``umask`` the one it is made with (None: the process's)."""

    def __init__(self, path: str, backlog: int = 4, kind: int = socket.SOCK_STREAM,
                 umask: int | None = None) -> None:
        self.path = path
        remove_stale_socket(path, kind)
        self.sock = socket.socket(socket.AF_UNIX, kind)
        old = os.umask(umask) if umask is not None else None
        try:
            self.sock.bind(path)
            self.sock.listen(backlog)
        except OSError:
            self.sock.close()
            raise
        finally:
            if old is not None:
                os.umask(old)
        self.sock.setblocking(False)

    def poll(self) -> socket.socket | None:
        """A new connection (non-blocking), or None."""
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return None
        conn.setblocking(False)
        return conn

    def accept(self, timeout: float) -> socket.socket:
        """Waits up to ``timeout`` seconds for a connection (TimeoutError
        after); returns it blocking."""
        self.sock.settimeout(timeout)
        try:
            conn, _ = self.sock.accept()
        finally:
            self.sock.setblocking(False)
        conn.setblocking(True)
        return conn

    def close(self) -> None:
        """Stops listening and removes the socket file."""
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class Connector:
    """Connects to a server at ``path``, trying again every ``interval``
    seconds (on the injectable ``clock``) while it is not there."""

    def __init__(self, path: str, interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path, self.interval, self.clock = path, interval, clock
        self._next_try = 0.0
        self.attempts = 0

    def _connect(self) -> socket.socket:
        self.attempts += 1
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        return sock

    def poll(self) -> socket.socket | None:
        """A connected socket (non-blocking), or None: not due yet, or no
        server answered (an app keeps trying, whatever the error)."""
        now = self.clock()
        if now < self._next_try:
            return None
        self._next_try = now + self.interval
        try:
            sock = self._connect()
        except OSError:
            return None
        sock.setblocking(False)
        return sock

    def connect(self, timeout: float, sleep: Callable[[float], None] = time.sleep
                ) -> socket.socket:
        """A connected, blocking socket, trying again while the server is not
        there (NOT_THERE) until ``timeout`` seconds have passed; then, or at
        once for any other error, the OSError is raised."""
        deadline = self.clock() + timeout
        while True:
            try:
                return self._connect()
            except NOT_THERE:
                if self.clock() > deadline:
                    raise
            sleep(self.interval)

    def close(self) -> None:
        """Nothing to release: a client holds no socket while unconnected."""
