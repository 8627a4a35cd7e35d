"""Sample: passes one packet in every N."""

from __future__ import annotations

from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import ffi, lib


class Sample(App):
    """Sends on every ``every``-th packet and frees the others."""

    inputs, outputs = ("input",), ("output",)
    links_only = True  # moves what its links give it (core/app.py)

    config = {"every": Param(int, doc="pass one packet in this many")}

    def __init__(self, conf: dict) -> None:
        if conf["every"] < 1:
            raise ConfigError(f"every must be at least 1, got {conf['every']}")
        self.every = conf["every"]
        self._seen = ffi.new("uint64_t *")

    def push(self) -> None:
        i, o = self.input.get("input"), self.output.get("output")
        if i is not None and o is not None:
            lib.basic_sample(i.c, o.c, self.every, self._seen)
