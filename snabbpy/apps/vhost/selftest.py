"""``snabbpy selftest apps.vhost``: a VhostUser app and a scripted frontend
in one process, joined by a socketpair; packets both ways, then teardown."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

from snabbpy.core import config, packet
from snabbpy.core.link import Link
from snabbpy.testing.fake_frontend import FakeFrontend

from .vhost_user import VhostUser


def run(npackets: int = 100) -> None:
    """Raises AssertionError on a fault; prints a line when all is well."""
    before = packet.in_use()
    with tempfile.TemporaryDirectory() as d:
        conf = config.validate("vhost", VhostUser, {"socket_path": str(Path(d) / "s")})
        app = VhostUser(conf)
        app.input, app.output = {"input": Link("in")}, {"output": Link("out")}
        app.link()
        ours, theirs = socket.socketpair()
        app.attach(ours)
        fe = FakeFrontend(theirs, app.tick)
        fe.connect()
        for i in range(npackets):
            fe.rings[1].post_tx(bytes([i % 256]) * 60)
            fe.rings[0].post_rx(2048)
            app.input["input"].transmit(packet.from_bytes(bytes([i % 256]) * 1500))
            if i % 64 == 63:
                app.pull()
                app.push()
        app.pull()
        app.push()
        assert app.output["output"].drain() == npackets
        assert len(fe.rings[0].take_used()) == npackets
        s = app.stats
        assert s["txq_packets"] == s["rxq_packets"] == npackets, s.snapshot()
        fe.close()
        app.tick()
        assert app.stats["disconnects"] == 1 and app.device.memory is None
        app.stop()
    assert packet.in_use() == before
    print(f"vhost selftest: ok ({npackets} packets each way)")
