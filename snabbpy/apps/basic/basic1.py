"""Snabb's basic1 graph, and the basic apps' selftest that runs it."""

from __future__ import annotations

from snabbpy.core import config, packet
from snabbpy.core.engine import Engine


def basic1(size: int = 60) -> config.Config:
    """Snabb's basic1 graph: Source -> Tee -> one Sink with two inputs."""
    c = config.new()
    config.app(c, "source", "basic.Source", {"size": size})
    config.app(c, "tee", "basic.Tee")
    config.app(c, "sink", "basic.Sink")
    config.link(c, "source.output -> tee.input")
    config.link(c, "tee.out1 -> sink.in1")
    config.link(c, "tee.out2 -> sink.in2")
    return c


def run(breaths: int = 100) -> None:
    """basic1 for ``breaths`` breaths; checks that both sinks saw every
    packet the source sent and none leaked."""
    before = packet.in_use()
    e = Engine()
    e.configure(basic1())
    for _ in range(breaths):
        e.breathe()
    stats = e.counters()["links"]
    sent = stats["source.output -> tee.input"]["txpackets"]
    held = e.packets_held()
    waiting = e.links["source.output -> tee.input"].nreadable()
    for out in ("tee.out1 -> sink.in1", "tee.out2 -> sink.in2"):
        assert stats[out]["rxpackets"] == sent - waiting, (out, stats)
    e.stop()
    assert packet.in_use() == before, "packets leaked"
    print(f"basic selftest: {sent:,} packets through Source -> Tee -> Sink, {held} in flight: ok")
