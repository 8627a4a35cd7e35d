"""Source: generates packets of a fixed size on every output."""

from __future__ import annotations

from snabbpy.core import packet
from snabbpy.core.app import ANY, App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import lib


class Source(App):
    """Fills each output link with copies of one packet of ``size`` bytes
    (zeros, or ``fill`` repeated) in every breath."""

    inputs, outputs = (), ANY
    links_only = True  # moves what its links give it (core/app.py)

    config = {
        "size": Param(int, default=60, doc="payload length in bytes"),
        "fill": Param(int, default=0, doc="value of every payload byte"),
    }

    def __init__(self, conf: dict) -> None:
        size, fill = conf["size"], conf["fill"]
        if not 0 <= size <= packet.PAYLOAD_SIZE:
            raise ConfigError(f"size {size} is outside 0..{packet.PAYLOAD_SIZE}")
        if not 0 <= fill <= 255:
            raise ConfigError(f"fill {fill} is not a byte value (0..255)")
        self.packet = packet.from_bytes(bytes([fill]) * size)
        self._outputs: list = []

    def link(self) -> None:
        self._outputs = [o.c for o in self.output.values()]

    def pull(self) -> None:
        for o in self._outputs:
            lib.link_fill_clone(o, self.packet, lib.LINK_MAX_PACKETS)

    def stop(self) -> None:
        packet.free(self.packet)
