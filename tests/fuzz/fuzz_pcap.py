"""atheris harness: the classic-pcap reader of snabbpy/lib/pcap.py.

Run: ``python3 tests/fuzz/fuzz_pcap.py [libFuzzer flags] [corpus dirs]``.

The input is a file. Half the time its first bytes are replaced by a valid
global header (either byte order, micro- or nanoseconds, the input's
snaplen) so the fuzzer spends its time in the records. The reader may only
raise ``PcapError``; every record it yields must hold incl_len bytes within
the snaplen, and writing the records back must read back the same.
"""

from __future__ import annotations

import struct
import sys

import atheris

with atheris.instrument_imports():
    from snabbpy.lib import pcap

MAGICS = (0xA1B2C3D4, 0xA1B23C4D)


def one_file(data: bytes) -> None:
    """One input: parse, check each record, round trip."""
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
