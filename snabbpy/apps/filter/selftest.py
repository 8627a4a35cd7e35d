"""`snabbpy selftest apps.filter`: PcapFilter on a few known frames, with
the program compiled to C and interpreted."""

from __future__ import annotations

import struct

from snabbpy.apps.filter.pcap_filter import PcapFilter
from snabbpy.core import packet
from snabbpy.core.link import Link

EXPRESSION = "tcp port 80 and not src net 10.0.0.0/8"


def tcp_frame(src: str, dport: int) -> bytes:
    """An Ethernet/IPv4/TCP frame from ``src`` to 192.168.0.1:``dport``."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, 6, 0,
                     bytes(map(int, src.split("."))), bytes([192, 168, 0, 1]))
    tcp = struct.pack("!HHIIBBHHH", 40000, dport, 0, 0, 0x50, 0x02, 1024, 0, 0)
    return bytes(6) + bytes.fromhex("020000000001") + b"\x08\x00" + ip + tcp


def run() -> None:
    """Checks which frames pass and which are rejected; AssertionError
    when one goes the wrong way."""
    frames = [(tcp_frame("192.168.5.5", 80), True), (tcp_frame("10.1.1.1", 80), False),
              (tcp_frame("192.168.5.5", 22), False), (tcp_frame("8.8.8.8", 80), True),
              (tcp_frame("8.8.8.8", 80)[:37], False)]
    for codegen in (True, False):
        app = PcapFilter({"filter": EXPRESSION, "linktype": "EN10MB", "codegen": codegen})
        app.input = {"input": Link("input")}
        app.output = {"output": Link("output"), "rejected": Link("rejected")}
        app.link()
        for data, _ in frames:
            app.input["input"].transmit(packet.from_bytes(data))
        app.push()
        for port, want in (("output", True), ("rejected", False)):
            link, got = app.output[port], []
            while not link.empty():
                p = link.receive()
                got.append(packet.to_bytes(p))
                packet.free(p)
            expected = [data for data, passes in frames if passes == want]
            assert got == expected, f"{app.how}: wrong packets on {port}"
        print(f"filter selftest: {EXPRESSION!r} {app.how}: ok")
