"""What both vguest selftests run: numbered frames -> VGuest -> a sink."""

from __future__ import annotations

from snabbpy.core import config
from snabbpy.core.engine import Engine
from snabbpy.testing.frames import NumberedSink, NumberedSource


def start(nic_conf: dict, count: int, size: int | tuple[int, ...], window: int = 0) -> Engine:
    """An engine running source -> nic (a VGuest) -> sink; the source's
    window is held to the sink; ``size``: one frame size or sizes to cycle."""
    c = config.new()
    config.app(c, "source", NumberedSource, {"count": count, "size": size, "window": window})
    config.app(c, "nic", "vguest.VGuest", nic_conf)
    config.app(c, "sink", NumberedSink)
    config.link(c, "source.output -> nic.input")
    config.link(c, "nic.output -> sink.input")
    engine = Engine()
    engine.configure(c)
    engine.apps["source"].sink = engine.apps["sink"]
    return engine


def bad_entries(counts: dict, kinds: tuple[str, ...]) -> dict[str, int]:
    """The ring counters of ``kinds`` (bad_*, oversize, ...) that are not zero."""
    return {k: v for k, v in counts.items() if k.split("_", 1)[-1].startswith(kinds) and v}

