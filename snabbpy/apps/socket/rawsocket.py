"""RawSocket: a Linux network interface through an AF_PACKET socket."""

from __future__ import annotations

import socket

from snabbpy.apps.socket.fdapp import FdApp
from snabbpy.core.app import Param
from snabbpy.core.config import ConfigError
from snabbpy.lib import bpf

ETH_P_ALL = 0x0003
SOL_PACKET = 263
#: Linux >= 4.20: the socket does not see the frames it sends itself.
PACKET_IGNORE_OUTGOING = 23
PACKET_AUXDATA = 8
RCVBUF_BYTES = 4 << 20


def open_raw_socket(ifname: str, program: bpf.Filter | None = None) -> socket.socket:
    """A non-blocking AF_PACKET socket bound to ``ifname``; ConfigError
    when the interface does not exist or we may not open raw sockets.
    ``program``, when given, is attached in the kernel before the socket is
    bound, so no frame it rejects is ever queued to us."""
    try:
        # Protocol 0 receives nothing until bind() names the interface, so
        # no frame of another interface slips in between.
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError:
        raise ConfigError("a raw socket needs root (CAP_NET_RAW)") from None
    if program is not None:
        try:
            program.attach_socket(s)
        except OSError as exc:
            s.close()
            raise ConfigError(f"filter: the kernel refused the program: {exc.strerror}") from None
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
    down), ``tx_errors``.

    ``filter`` (a pcap-filter expression) runs in the kernel: frames it
    rejects never cross into userspace. The kernel has already moved a
    received VLAN tag into metadata when the filter runs, so an
    expression about ``vlan`` sees untagged frames here (use PcapFilter
    behind RawSocket for those)."""

    config = {
        "ifname": Param(str, doc="the interface, e.g. eth0"),
        "filter": Param(str, default=None, doc="pcap-filter expression applied in the kernel"),
    }

    def __init__(self, conf: dict) -> None:
        self.ifname = conf["ifname"]
        self.sock = open_raw_socket(self.ifname, kernel_filter(conf["filter"]))
        self.open_port(self.sock.fileno(), True)

    def close_fd(self) -> None:
        """Closes the raw socket."""
        self.sock.close()


def kernel_filter(expression: str | None) -> bpf.Filter | None:
    """The compiled program for a ``filter:`` key (Ethernet frames), None
    without one; ConfigError with libpcap's message when it is invalid."""
    if expression is None:
        return None
    try:
        return bpf.compile_expression(expression, bpf.DLT_EN10MB)
    except bpf.BpfError as exc:
        raise ConfigError(str(exc)) from None
