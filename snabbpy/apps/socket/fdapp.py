"""What RawSocket and Tap share: moving packets between links and a
non-blocking fd through the C batch calls of ``fdio.c``."""

from __future__ import annotations

import errno
import os

from snabbpy.core import packet
from snabbpy.core.app import App
from snabbpy.core.native import ffi, lib

#: Counters of an fd app, in the order of the FDIO_* indexes of fdio.h.
COUNTERS = ("rx_packets", "rx_bytes", "rx_oversize", "rx_nomem", "rx_errors",
            "tx_packets", "tx_bytes", "tx_again", "tx_toolong", "tx_down", "tx_errors")


def errno_text(code: int) -> str:
    """``"ENETDOWN (Network is down)"``."""
    return f"{errno.errorcode.get(code, code)} ({os.strerror(code)})"


class FdPort:
    """Moves frames between an fd and an app's links, a batch per breath.

    The app calls ``receive`` from ``pull()``, ``send`` from ``push()``,
    ``report`` and ``close`` from its own."""

    def __init__(self, fd: int, is_socket: bool, stats) -> None:
        self.c = ffi.new("struct fdio *")
        self.c.fd, self.c.is_socket = fd, int(is_socket)
        self.stats = stats
        self._stats_c = stats.pointer
        assert tuple(stats.names) == COUNTERS, "fd app counters out of order"

    def receive(self, out) -> int:
        """Frames from the fd onto ``out`` (as many as it has room for)."""
        return lib.fdio_receive(self.c, out, lib.link_nwritable(out), self._stats_c)

    def send(self, inp) -> int:
        """Packets of ``inp`` to the fd, until the kernel has no room."""
        return lib.fdio_send(self.c, inp, lib.LINK_MAX_PACKETS, self._stats_c)

    def report(self) -> str | None:
        """The last unexpected error in each direction, if any."""
        lines = []
        if self.c.rx_errno:
            lines.append(f"last receive error: {errno_text(self.c.rx_errno)}")
        if self.c.tx_errno:
            lines.append(f"last send error: {errno_text(self.c.tx_errno)}")
        return "\n".join(lines) or None

    def close(self) -> None:
        """Frees the spare packets; the app closes the fd itself."""
        for i in range(self.c.nspare):
            packet.free(self.c.spare[i])
        self.c.nspare = 0


def first_link(ports: dict, name: str):
    """The ``struct link *`` of port ``name``, else None."""
    link = ports.get(name)
    return link.c if link is not None else None


class FdApp(App):
    """The shell RawSocket and Tap share: an ``input`` port sent to an fd
    and an ``output`` port fed from it (either port may be left out).

    A subclass opens its fd in ``__init__`` and calls ``open_port``; it
    closes the fd in ``close_fd`` (called by ``stop`` after the port
    freed its spare packets)."""

    inputs, outputs = ("input",), ("output",)
    link_types = (1,)  # parses Ethernet frames (core/linktypes.py)

    counters = COUNTERS
    port: FdPort

    def open_port(self, fd: int, is_socket: bool) -> None:
        """Starts moving frames through ``fd`` (a socket or a character device)."""
        self.port = FdPort(fd, is_socket, self.stats)
        self._in = self._out = None

    def link(self) -> None:
        self._in = first_link(self.input, "input")
        self._out = first_link(self.output, "output")

    def pull(self) -> None:
        if self._out is not None:
            self.port.receive(self._out)

    def push(self) -> None:
        if self._in is not None:
            self.port.send(self._in)

    def report(self) -> str | None:
        """The last unexpected errors, if any."""
        return self.port.report()

    def stop(self) -> None:
        self.port.close()
        self.close_fd()

    def close_fd(self) -> None:
        """Closes the fd given to ``open_port``."""
        raise NotImplementedError
