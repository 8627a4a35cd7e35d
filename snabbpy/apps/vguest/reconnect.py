"""vguest reconnect: noticing a vhost-user backend gone, and finding the next.

``backend_gone(sock)`` looks at the transport's socket without blocking:
between requests a backend has nothing to say, so a readable socket means
end of file or an error (its text is returned), anything else None.
``Reconnector`` waits for the next backend without blocking either: a
client tries to connect every ``interval`` seconds (on the injectable
``clock``), a server listens on the path again and accepts the next one.
The app (vguest.py) tears the device down and brings it up again around
these two. DMA memory is never given back, so ``RecycledMemory`` hands
each new device the ring areas of the one before: reconnecting a thousand
times takes no more memory than once.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from typing import Any

from snabbpy.core.memory import DMAMemory, dma
from snabbpy.lib.vhost_user.sockets import Connector, Listener

#: Counters a vhost-user VGuest keeps about its connection.
COUNTERS = ("disconnects", "reconnects", "reconnect_failures",
            "tx_lost_on_disconnect", "input_dropped_disconnected")


def backend_gone(sock: socket.socket) -> str | None:
    """Why the backend behind ``sock`` is gone ("closed the connection", or
    the socket's error), or None while it is there. Never blocks."""
    try:
        readable, _, broken = select.select([sock], [], [sock], 0)
    except (OSError, ValueError) as e:  # ValueError: the socket is closed
        return f"socket unusable: {e}"
    if not readable and not broken:
        return None
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None
    except OSError as e:
        return f"connection error: {e.strerror or e}"
    # Data with no request outstanding is left for the next request to judge.
    return None if data else "backend closed the connection"


class Reconnector:
    """Waits, without blocking, for the next backend on ``path``: connects
    (client) every ``interval`` seconds, or listens and accepts (server)."""

    def __init__(self, path: str, is_server: bool, interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path, self.is_server, self.interval, self.clock = path, is_server, interval, clock
        self.endpoint: Listener | Connector | None = None
        self.last_error = ""
        self._started = False
        self._connector: Connector | None = None
        self._next_listen = 0.0

    @property
    def waiting(self) -> bool:
        """True between ``start()`` and the next connected socket."""
        return self._started

    def start(self) -> None:
        """Begins waiting. A client keeps one ``Connector``, so a backend that
        answered and failed is tried again an interval later, not at once; a
        server that cannot listen again (someone took the path) tries again
        every interval."""
        self._started = True
        if self.is_server:
            self._listen()
            return
        if self._connector is None:
            self._connector = Connector(self.path, self.interval, self.clock)
        self.endpoint = self._connector

    def _listen(self) -> None:
        self._next_listen = self.clock() + self.interval
        try:
            self.endpoint = Listener(self.path, backlog=1)
        except OSError as e:
            self.last_error = f"cannot listen on {self.path}: {e}"
            self.endpoint = None

    def poll(self) -> socket.socket | None:
        """A connected, blocking socket to a new backend, or None for now."""
        if self.endpoint is None:
            if not self._started or self.clock() < self._next_listen:
                return None
            self._listen()
            if self.endpoint is None:
                return None
        sock = self.endpoint.poll()
        if sock is None:
            return None
        self.close()
        sock.setblocking(True)
        return sock

    def close(self) -> None:
        """Stops waiting (a server's socket file is removed)."""
        if self.endpoint is not None and self.is_server:
            self.endpoint.close()
        self.endpoint = None
        self._started = False


class RecycledMemory:
    """DMA memory for one device at a time: ``allocate`` takes an area of
    the same size and alignment that ``recycle()`` gave back when there is
    one, else new memory; everything else is ``memory``'s."""

    def __init__(self, memory: DMAMemory = dma) -> None:
        self.memory = memory
        self.free: dict[tuple[int, int], list[int]] = {}
        self.lent: list[tuple[tuple[int, int], int]] = []
        self.fresh = 0  # areas taken from ``memory`` so far

    def allocate(self, size: int, align: int = 64) -> int:
        """An area of ``size`` bytes at ``align``: a recycled one if it fits."""
        key = (size, align)
        spare = self.free.get(key)
        if spare:
            address = spare.pop()
        else:
            address = self.memory.allocate(size, align)
            self.fresh += 1
        self.lent.append((key, address))
        return address

    def recycle(self) -> None:
        """Takes back every area lent: only once the device that used them
        is gone (its rings freed, its backend disconnected)."""
        for key, address in self.lent:
            self.free.setdefault(key, []).append(address)
        self.lent.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.memory, name)
