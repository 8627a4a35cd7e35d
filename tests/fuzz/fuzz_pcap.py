"""atheris harness: the classic-pcap reader of snabbpy/lib/pcap.py and the
pcapng section header and interface parsers of snabbpy/lib/pcapng.py.

Run: ``python3 tests/fuzz/fuzz_pcap.py [libFuzzer flags] [corpus dirs]``.

The input is a file. Half the time its first bytes are replaced by a valid
global header (either byte order, micro- or nanoseconds, the input's
snaplen) so the fuzzer spends its time in the records. The reader may only
raise ``PcapError``; every record it yields must hold incl_len bytes within
the snaplen, and writing the records back must read back the same.

An input starting with the pcapng section header type is a pcapng file
instead (seeds: corpus/pcap/pcapng-*): its blocks are
walked as PcapReader does, each section header parsed, each interface
description parsed, built again in the same byte order and parsed back the
same. The parsers may only raise ``PcapError`` (or ``struct.error`` on a
short block, which the reader also catches).
"""

from __future__ import annotations

import struct
import sys

import atheris

with atheris.instrument_imports():
    from snabbpy.lib import pcap, pcapng

MAGICS = (0xA1B2C3D4, 0xA1B23C4D)


def one_pcapng(data: bytes) -> None:
    """A pcapng file: every section header and interface description."""
    pos, order = 0, "<"
    try:
        while len(data) - pos >= 12:
            view = memoryview(data)[pos:]
            where = f"block at offset {pos}"
            if view[:4] == pcapng.MAGIC:
                order, length = pcapng.parse_section_header(view, where)
                assert length >= 28 and length % 4 == 0
            else:
                (btype, length) = struct.unpack_from(order + "II", view)
                if length < 12 or length % 4:
                    return
            if length > len(view):
                return
            pcapng.check_trailer(view, order, length, where)
            if view[:4] != pcapng.MAGIC and btype == pcapng.IDB_TYPE:
                iface = pcapng.parse_interface(view, order, where)
                again = pcapng.build_interface(iface, order)
                assert pcapng.parse_interface(again, order, "again") == iface, iface
            pos += length
    except (pcap.PcapError, struct.error):
        pass


def one_file(data: bytes) -> None:
    """One input: parse, check each record, round trip."""
    if data[:4] == pcapng.MAGIC:
        one_pcapng(data)
        return
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        order = "<" if fdp.ConsumeBool() else ">"
        magic = MAGICS[fdp.ConsumeIntInRange(0, 1)]
        snaplen = fdp.ConsumeIntInRange(0, 70000)
        head = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, 1)
        data = head + fdp.ConsumeBytes(fdp.remaining_bytes())
    else:
        data = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        header = pcap.parse_file_header(data[:pcap.FILE_HEADER_SIZE])
    except pcap.PcapError:
        return
    records = []
    try:
        for rec, body in pcap.iter_records(data):
            assert len(body) == rec.incl_len <= header.max_record_length, (rec, len(body))
            records.append((rec, bytes(body)))
    except pcap.PcapError:
        pass
    again = pcap.build_file(records, header)
    assert [(r.incl_len, b) for r, b in pcap.iter_records(again)] == \
        [(r.incl_len, b) for r, b in records]


def main() -> None:
    """libFuzzer's command line: flags and corpus directories."""
    atheris.Setup(sys.argv, one_file)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
