"""RawSocket: a Linux network interface through an AF_PACKET socket."""

from __future__ import annotations

import socket

from snabbpy.apps.socket.fdapp import FdApp
from snabbpy.core.app import Param
from snabbpy.core.config import ConfigError

ETH_P_ALL = 0x0003
SOL_PACKET = 263
#: Linux >= 4.20: the socket does not see the frames it sends itself.
PACKET_IGNORE_OUTGOING = 23
PACKET_AUXDATA = 8
RCVBUF_BYTES = 4 << 20


def open_raw_socket(ifname: str) -> socket.socket:
    """A non-blocking AF_PACKET socket bound to ``ifname``; ConfigError
    when the interface does not exist or we may not open raw sockets."""
    try:
        # Protocol 0 receives nothing until bind() names the interface, so
        # no frame of another interface slips in between.
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError:
        raise ConfigError("a raw socket needs root (CAP_NET_RAW)") from None
    try:
        s.bind((ifname, ETH_P_ALL))
    except ValueError:  # a NUL in the name: no interface can have it
        s.close()
        raise ConfigError(f"ifname {ifname!r}: not an interface name") from None
    except OSError as exc:
        s.close()
        if exc.errno == 19:  # ENODEV
            raise ConfigError(f"ifname {ifname!r}: no such network interface") from None
        raise ConfigError(f"ifname {ifname!r}: cannot bind: {exc.strerror}") from None
    s.setblocking(False)
    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)  # stripped VLAN tags, to put back
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, RCVBUF_BYTES)  # SO_RCVBUFFORCE
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
    return s


class RawSocket(FdApp):
    """Sends the packets of its ``input`` out of interface ``ifname`` and
    puts the frames the interface receives on its ``output``.

    A frame longer than a packet (10240 bytes) is counted in
    ``rx_oversize`` and dropped. When the kernel has no room for a frame
    (EAGAIN/ENOBUFS, counted in ``tx_again``) it stays on the input link
    for the next breath; other send errors drop the packet and count it by
    kind: ``tx_toolong`` (longer than the MTU), ``tx_down`` (interface
    down), ``tx_errors``."""

    config = {"ifname": Param(str, doc="the interface, e.g. eth0")}

    def __init__(self, conf: dict) -> None:
        self.ifname = conf["ifname"]
        self.sock = open_raw_socket(self.ifname)
        self.open_port(self.sock.fileno(), True)

    def close_fd(self) -> None:
        """Closes the raw socket."""
        self.sock.close()
