"""Truncate: makes every packet exactly ``size`` bytes."""

from __future__ import annotations

from snabbpy.core import packet
from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import lib


class Truncate(App):
    """Cuts longer packets and zero-pads shorter ones to ``size`` bytes."""

    inputs, outputs = ("input",), ("output",)
    links_only = True  # moves what its links give it (core/app.py)

    config = {"size": Param(int, doc="length of every packet sent on")}

    def __init__(self, conf: dict) -> None:
        if not 0 <= conf["size"] <= packet.PAYLOAD_SIZE:
            raise ConfigError(f"size {conf['size']} is outside 0..{packet.PAYLOAD_SIZE}")
        self.size = conf["size"]

    def push(self) -> None:
        i, o = self.input.get("input"), self.output.get("output")
        if i is not None and o is not None:
            lib.basic_truncate(i.c, o.c, self.size)
