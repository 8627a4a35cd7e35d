"""Classic pcap fidelity: a reader -> writer graph reproduces the global
header, link type, timestamps and lengths of any capture; mixed link
types; records longer than a packet said at the end; a full disk."""

import errno
import os

import pytest
from helpers import run
from pcap_tools import frames

from snabbpy.apps.basic import Source
from snabbpy.apps.pcap import PcapReader, PcapWriter
from snabbpy.core import config
from snabbpy.lib import pcap
from snabbpy.lib.pcap import FileHeader, RecordHeader

pytestmark = pytest.mark.usefixtures("no_leaks")


def copy(tmp_path, data: bytes, **writer_conf) -> tuple[bytes, dict, dict]:
    src, out = tmp_path / "in.pcap", tmp_path / "out.pcap"
    src.write_bytes(data)
    c = config.new()
    config.app(c, "r", PcapReader, {"path": str(src)})
    config.app(c, "w", PcapWriter, {"path": str(out), **writer_conf})
    config.link(c, "r.output -> w.input")
    e = run(c)
    counters = e.counters()["apps"]
    e.stop()
    return out.read_bytes(), counters["r"], counters["w"]


@pytest.mark.parametrize("header", [
    FileHeader(">", True, 2, 4, -3600, 5, 96, 228),
    FileHeader("<", False, 2, 3, 7200, 0, 1500, 1),
    FileHeader(">", False, snaplen=65535, linktype=0x30000001),
])
def test_global_header_is_reproduced_exactly(tmp_path, header):
    recs = [(RecordHeader(1700000000 + i, i, 60, 60), bytes([i]) * 60) for i in range(10)]
    data = pcap.build_file(recs, header)
    out, _, _ = copy(tmp_path, data)
    assert out == data


def test_out_of_range_fractions_and_short_orig_len_are_kept(tmp_path):
    # ts_usec 3841916976 once came out as 2216213 (usec * 1000 in 32 bits);
    # orig_len below incl_len was rewritten to incl_len.
    recs = [(RecordHeader(1, 3841916976, 60, 60), bytes(60)),
            (RecordHeader(2, 999999, 60, 40), bytes(60)),
            (RecordHeader(3, 5, 60, 0), bytes(60))]
    data = pcap.build_file(recs)
    out, _, _ = copy(tmp_path, data)
    assert out == data


def test_a_nanosecond_file_written_as_microseconds_is_converted(tmp_path):
    data = pcap.build_file([(RecordHeader(5, 123456789, 60, 60), bytes(60))],
                           FileHeader(nanosecond=True))
    out, _, _ = copy(tmp_path, data, nanosecond=False)
    (r, _), = pcap.iter_records(out)
    assert (r.ts_sec, r.ts_frac) == (5, 123456)


def test_a_configured_snaplen_below_a_packet_cuts_records(tmp_path):
    data = pcap.build_file([(RecordHeader(5, 1, 200, 200), bytes(range(200)))])
    out, _, _ = copy(tmp_path, data, snaplen=64)
    assert pcap.parse_file_header(out).snaplen == 64
    (r, body), = pcap.iter_records(out)
    assert (r.incl_len, r.orig_len, body) == (64, 200, bytes(range(64)))


def test_two_link_types_into_one_classic_writer_drop_the_second(tmp_path, capsys):
    a, b, out = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "out.pcap"
    recs = [(RecordHeader(1, 0, 60, 60), bytes(60))] * 3
    a.write_bytes(pcap.build_file(recs, FileHeader(linktype=1)))
    b.write_bytes(pcap.build_file(recs, FileHeader(linktype=101)))
    c = config.new()
    config.app(c, "a", PcapReader, {"path": str(a)})
    config.app(c, "b", PcapReader, {"path": str(b)})
    config.app(c, "w", PcapWriter, {"path": str(out)})
    config.link(c, "a.output -> w.a")
    config.link(c, "b.output -> w.b")
    e = run(c)
    w = e.counters()["apps"]["w"]
    report = e.apps["w"].report()
    e.stop()
    assert (w["packets"], w["linktype_mismatch"]) == (3, 3)
    assert pcap.parse_file_header(out.read_bytes()).linktype == 1
    assert "packets of link type 101" in report and "link type 101" in capsys.readouterr().err


def test_records_longer_than_a_packet_are_said_at_the_end(tmp_path, capsys):
    recs = [(RecordHeader(1, 0, 20000, 20000), bytes(20000))] * 2 + \
        [(RecordHeader(1, 0, 60, 60), bytes(60))]
    src = tmp_path / "in.pcap"
    src.write_bytes(pcap.build_file(recs))
    c = config.new()
    config.app(c, "r", PcapReader, {"path": str(src)})
    config.app(c, "w", PcapWriter, {"path": str(tmp_path / "o.pcap")})
    config.link(c, "r.output -> w.input")
    e = run(c)
    assert "skipped 2 records longer than a packet" in e.apps["r"].report()
    e.stop()
    assert "in.pcap: skipped 2 records longer than a packet" in capsys.readouterr().err


class _FillingDisk:
    """os for the writer, with a disk that fills after ``room`` bytes: the
    write that crosses it is cut short (a partial record), the next fails."""

    def __init__(self, room: int) -> None:
        self.room = room

    def write(self, fd, data):
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = os.write(fd, bytes(data[:self.room]))
        self.room -= n
        return n

    def __getattr__(self, name):
        return getattr(os, name)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_a_full_disk_leaves_whole_records_and_counts_them_exactly(tmp_path, fmt, monkeypatch,
                                                                   capsys):
    from snabbpy.apps.pcap import writer
    monkeypatch.setattr(writer, "os", _FillingDisk(1_500_000))
    out = tmp_path / f"out.{fmt}"
    c = config.new()
    config.app(c, "s", Source, {"size": 1000})
    config.app(c, "w", PcapWriter, {"path": str(out)})
    config.link(c, "s.output -> w.input")
    e = run(c, 20)
    w = e.apps["w"]
    e.stop()
    stats = w.stats.snapshot()
    assert stats["write_errors"] == 1 and stats["dropped"] > 0
    assert "write failed: No space left on device" in capsys.readouterr().err
    data = out.read_bytes()
    assert len(data) < 1_500_000
    if fmt == "pcap":
        records = list(pcap.iter_records(data))  # raises on a partial record
        assert len(records) == stats["packets"] and stats["bytes"] == 1000 * len(records)
    else:
        assert len(frames(out)) == stats["packets"] > 0


def test_source_to_writer_still_writes_ethernet(tmp_path):
    out = tmp_path / "o.pcap"
    c = config.new()
    config.app(c, "s", Source, {"size": 60})
    config.app(c, "w", PcapWriter, {"path": str(out)})
    config.link(c, "s.output -> w.input")
    e = run(c, 2)
    e.stop()
    h = pcap.parse_file_header(out.read_bytes())
    assert (h.linktype, h.snaplen) == (1, pcap.MAXIMUM_SNAPLEN)
