"""Selftest of RawSocket: frames sent out of an interface come back in.

On ``lo`` every frame sent is received again (and the socket ignores its
own outgoing copy), so PcapReader -> RawSocket(lo) -> PcapWriter must
write exactly the frames it read. Run it in a namespace of its own so no
other traffic shares the loopback::

    ip netns add t && ip netns exec t snabbpy selftest apps.socket
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from snabbpy.core import config
from snabbpy.core.engine import Engine
from snabbpy.lib import pcap

#: IEEE "local experimental" ethertype: no protocol stack takes these.
ETHERTYPE = bytes.fromhex("88b5")


def frames(n: int, ethertype: bytes = ETHERTYPE) -> list[bytes]:
    """``n`` distinct broadcast frames of growing size."""
    mac = bytes.fromhex("020000000001")
    return [b"\xff" * 6 + mac + ethertype + i.to_bytes(4, "big") * (12 + i % 300)
            for i in range(n)]


def run(ifname: str = "lo", n: int = 200, timeout: float = 30.0) -> None:
    """Sends ``n`` frames through RawSocket(ifname) and checks they all
    come back, in order and intact; raises AssertionError otherwise."""
    sent = frames(n)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "tx.pcap"), Path(tmp, "rx.pcap")
        src.write_bytes(pcap.build_file(
            [(pcap.RecordHeader(0, 0, len(f), len(f)), f) for f in sent]))
        c = config.new()
        config.app(c, "reader", "pcap.PcapReader", {"path": str(src)})
        config.app(c, "raw", "socket.RawSocket", {"ifname": ifname})
        config.app(c, "writer", "pcap.PcapWriter", {"path": str(dst)})
        config.link(c, "reader.output -> raw.input")
        config.link(c, "raw.output -> writer.input")
        e = Engine()
        e.configure(c)
        deadline = time.monotonic() + timeout
        while e.apps["raw"].stats["rx_packets"] < n and time.monotonic() < deadline:
            e.breathe()
        stats = e.apps["raw"].stats.snapshot()
        e.stop()
        got = [p for _, p in pcap.iter_records(dst.read_bytes()) if p[12:14] == ETHERTYPE]
    assert stats["tx_packets"] == n, stats
    assert got == sent, f"sent {n} frames, {len(got)} came back: {stats}"
    print(f"socket selftest on {ifname}: ok ({n} frames out and back)")
