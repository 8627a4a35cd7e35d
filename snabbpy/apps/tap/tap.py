"""Tap: a Linux TAP device, the kernel's network stack as a port."""

from __future__ import annotations

import os

from snabbpy.apps.socket.fdapp import FdApp
from snabbpy.apps.socket.rawsocket import kernel_filter
from snabbpy.apps.tap import device
from snabbpy.core import packet
from snabbpy.core.app import Param
from snabbpy.core.config import ConfigError

ETHERNET_HEADER = 14


class Tap(FdApp):
    """Frames the kernel sends to TAP device ``name`` come out of
    ``output``; packets on ``input`` go into the kernel as if received.

    Creates the device when missing (it disappears on stop) or attaches to
    an existing one (``ip tuntap add NAME mode tap``: it stays), brings it
    up and sets its MTU when ``mtu`` is given. Counters as RawSocket's.
    ``filter`` (a pcap-filter expression) runs in the kernel
    (TUNATTACHFILTER): frames it rejects are dropped before we read them."""

    config = {
        "name": Param(str, doc="the device name, e.g. tap0"),
        "mtu": Param(int, default=None, doc="MTU to set (default: leave as is)"),
        "filter": Param(str, default=None, doc="pcap-filter expression applied in the kernel"),
    }

    def __init__(self, conf: dict) -> None:
        self.device_name = conf["name"]
        mtu = conf["mtu"]
        if mtu is not None and not 68 <= mtu <= packet.PAYLOAD_SIZE - ETHERNET_HEADER:
            raise ConfigError(f"mtu {mtu} is outside 68..{packet.PAYLOAD_SIZE - ETHERNET_HEADER}"
                              " (a frame must fit in a packet)")
        program = kernel_filter(conf["filter"])
        self.fd, self.created = device.open_tap(self.device_name)
        try:
            if program is not None:
                try:
                    program.attach_tap(self.fd)
                except OSError as exc:
                    raise ConfigError(f"filter: the kernel refused the program: "
                                      f"{exc.strerror}") from None
            if mtu is not None:
                device.set_mtu(self.device_name, mtu)
            device.bring_up(self.device_name)
        except (OSError, ConfigError):
            os.close(self.fd)
            raise
        self.open_port(self.fd, False)

    def report(self) -> str | None:
        """Whether the device was created or attached, and the last errors."""
        how = "created (removed on stop)" if self.created else "attached (left in place)"
        return "\n".join(filter(None, [f"device {self.device_name}: {how}", self.port.report()]))

    def close_fd(self) -> None:
        """Closes the TAP fd."""
        # Closing the fd removes a device we created: it is not persistent.
        os.close(self.fd)
