"""The pcap apps: read and write classic pcap and pcapng files (tcpdump, Wireshark)."""

from snabbpy.apps.pcap.reader import PcapReader
from snabbpy.apps.pcap.writer import PcapWriter

__all__ = ["PcapReader", "PcapWriter", "linktype"]

#: This package's C parts for snabbpy._native: (header, source), either may be
#: None, relative to this directory, in the order C must see them.
#: native_build.py reads this list without importing the package.
C_PARTS = [("pcap.h", "pcap.c")]


def selftest() -> None:
    """Writes a few packets with PcapWriter, reads them back with
    PcapReader, and checks they are the same."""
    import tempfile
    from pathlib import Path

    from snabbpy.core import config
    from snabbpy.core.engine import Engine
    from snabbpy.lib import pcap

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.pcap"), Path(tmp, "out.pcap")
        records = [(pcap.RecordHeader(1700000000 + i, i, 60 + i, 60 + i), bytes([i]) * (60 + i))
                   for i in range(100)]
        src.write_bytes(pcap.build_file(records))
        c = config.new()
        config.app(c, "reader", PcapReader, {"path": str(src)})
        config.app(c, "writer", PcapWriter, {"path": str(dst)})
        config.link(c, "reader.output -> writer.input")
        e = Engine()
        e.configure(c)
        for _ in range(10):
            e.breathe()
        e.stop()
        assert dst.read_bytes() == src.read_bytes(), "round trip differs"
    print("pcap selftest: ok")


def linktype(p) -> int | None:
    """The link type a packet was captured with (a PcapReader's file or
    pcapng interface; low 16 bits), or None for a packet no reader made or
    that was changed since. Apps that parse Ethernet check it is 1."""
    from snabbpy.apps.pcap import sources
    from snabbpy.core.native import lib

    found = sources.lookup(lib.pcap_packet_key(p, 0))
    return None if found is None else found[1].linktype & 0xFFFF
