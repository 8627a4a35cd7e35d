"""PcapReader and PcapWriter in a running engine: round trips, loops,
both byte orders and units, bad files, oversize records."""

from pathlib import Path

import pytest
from helpers import run

from snabbpy.apps.basic import Sink
from snabbpy.apps.pcap import PcapReader, PcapWriter
from snabbpy.core import config, packet
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine
from snabbpy.lib import pcap
from snabbpy.lib.pcap import FileHeader, RecordHeader

pytestmark = pytest.mark.usefixtures("no_leaks")


def capture(n: int, size: int = 60, start: int = 1700000000) -> list[tuple[RecordHeader, bytes]]:
    return [(RecordHeader(start + i, i * 7, size, size), (i % 256).to_bytes(1, "big") * size)
            for i in range(n)]


def reader_to(tmp_path: Path, data: bytes, sink=Sink, sink_conf=None, **reader_conf):
    src = tmp_path / "in.pcap"
    src.write_bytes(data)
    c = config.new()
    config.app(c, "reader", PcapReader, {"path": str(src), **reader_conf})
    config.app(c, "out", sink, sink_conf)
    config.link(c, "reader.output -> out.input")
    return c


def test_reader_to_writer_copies_a_file_byte_for_byte(tmp_path):
    data = pcap.build_file(capture(5000) + capture(10, size=1514))
    c = reader_to(tmp_path, data, PcapWriter, {"path": str(tmp_path / "out.pcap")})
    before = packet.in_use()
    e = run(c)
    counters = e.counters()
    e.stop()
    assert (tmp_path / "out.pcap").read_bytes() == data
    assert counters["apps"]["reader"]["packets"] == 5010
    assert counters["apps"]["out"]["packets"] == 5010
    assert packet.in_use() == before


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_reader_reads_both_orders_and_units(tmp_path, order, nanosecond):
    recs = capture(100, size=64)
    data = pcap.build_file(recs, FileHeader(order, nanosecond))
    out = tmp_path / "out.pcap"
    c = reader_to(tmp_path, data, PcapWriter, {"path": str(out), "nanosecond": nanosecond})
    run(c).stop()
    assert list(pcap.iter_records(out.read_bytes())) == recs


def test_reader_keeps_the_original_length_of_snapped_records(tmp_path):
    recs = [(RecordHeader(5, 6, 96, 1514), bytes(96))]
    data = pcap.build_file(recs, FileHeader(snaplen=96))
    out = tmp_path / "out.pcap"
    run(reader_to(tmp_path, data, PcapWriter, {"path": str(out)})).stop()
    assert list(pcap.iter_records(out.read_bytes())) == recs


def test_loop_starts_over_and_counts_passes(tmp_path):
    e = run(reader_to(tmp_path, pcap.build_file(capture(10)), loop=True), breaths=20)
    stats = e.counters()["apps"]["reader"]
    e.stop()
    assert stats["packets"] > 100 and stats["loops"] >= 10


def test_loop_over_a_file_without_packets_stops(tmp_path):
    e = run(reader_to(tmp_path, pcap.build_file([]), loop=True), breaths=5)
    assert e.counters()["apps"]["reader"]["packets"] == 0
    e.stop()


def test_loop_over_a_file_of_only_oversize_records_stops(tmp_path):
    data = pcap.build_file([(RecordHeader(0, 0, 20000, 20000), bytes(20000))])
    e = run(reader_to(tmp_path, data, loop=True), breaths=5)
    assert e.counters()["apps"]["reader"]["oversize"] == 1
    e.stop()


def test_truncated_file_delivers_every_packet_before_the_fault(tmp_path, capsys):
    data = pcap.build_file(capture(16)) + bytes(8)
    out = tmp_path / "out.pcap"
    e = run(reader_to(tmp_path, data, PcapWriter, {"path": str(out)}))
    stats, report = e.counters()["apps"]["reader"], e.apps["reader"].report()
    e.stop()
    assert stats["packets"] == 16 and stats["errors"] == 1
    expected = f"{tmp_path}/in.pcap: record 17 at offset {24 + 16 * 76}: truncated header " \
               "(8 of 16 bytes)"
    assert report == f"error: {expected}"
    assert expected in capsys.readouterr().err
    assert len(list(pcap.iter_records(out.read_bytes()))) == 16


def test_corrupt_length_stops_reading_with_the_record_named(tmp_path, capsys):
    data = bytearray(pcap.build_file(capture(3), FileHeader(snaplen=65535)))
    data[24 + 2 * 76 + 8:24 + 2 * 76 + 12] = (300000).to_bytes(4, "little")
    e = run(reader_to(tmp_path, bytes(data)))
    stats = e.counters()["apps"]["reader"]
    e.stop()
    assert stats["packets"] == 2 and stats["errors"] == 1
    assert ("record 3 at offset 176: incl_len 300000 exceeds the largest snaplen 262144"
            in capsys.readouterr().err)


def test_a_record_longer_than_the_snaplen_is_read_and_counted(tmp_path):
    # tcpdump reads such records on; so does the reader, and copies them.
    recs = capture(1) + capture(1, size=200) + capture(1)
    data = pcap.build_file(recs, FileHeader(snaplen=100))
    out = tmp_path / "out.pcap"
    e = run(reader_to(tmp_path, data, PcapWriter, {"path": str(out)}))
    stats = e.counters()["apps"]["reader"]
    e.stop()
    assert (stats["packets"], stats["over_snaplen"], stats["errors"]) == (3, 1, 0)
    assert out.read_bytes() == data


def test_records_longer_than_a_packet_are_skipped_and_counted(tmp_path):
    recs = capture(2) + [(RecordHeader(0, 0, 20000, 20000), bytes(20000))] + capture(2)
    out = tmp_path / "out.pcap"
    e = run(reader_to(tmp_path, pcap.build_file(recs), PcapWriter, {"path": str(out)}))
    stats = e.counters()["apps"]["reader"]
    e.stop()
    assert stats["packets"] == 4 and stats["oversize"] == 1
    assert len(list(pcap.iter_records(out.read_bytes()))) == 4


def test_bad_files_are_config_errors_naming_the_file(tmp_path):
    with pytest.raises(ConfigError, match="app 'reader': .*/in.pcap: not a classic pcap file: "
                                          "unknown magic 0x0b0d0d0a"):
        run(reader_to(tmp_path, b"\x0b\x0d\x0d\x0a" + bytes(40)))
    with pytest.raises(ConfigError, match="app 'reader': .*/in.pcap: block 1 at offset 0: "
                                          "bad byte-order magic 0x00000000"):
        run(reader_to(tmp_path, b"\x0a\x0d\x0d\x0a" + bytes(40)))
    with pytest.raises(ConfigError, match="path '/nonexistent/x.pcap': cannot open"):
        config.app(c := config.new(), "r", PcapReader, {"path": "/nonexistent/x.pcap"})
        Engine().configure(c)


@pytest.mark.parametrize("linktype", [101, 113, 0x30000001, 0x04000001 | 0x20000000])
def test_any_link_type_round_trips_with_its_upper_bits(tmp_path, linktype):
    data = pcap.build_file(capture(5), FileHeader(linktype=linktype))
    out = tmp_path / "out.pcap"
    e = run(reader_to(tmp_path, data, PcapWriter, {"path": str(out)}))
    e.stop()
    assert out.read_bytes() == data
    h = pcap.parse_file_header(data)
    assert h.link_type == linktype & 0xFFFF


def test_fcs_bits_are_read_as_the_format_says():
    assert FileHeader(linktype=0x04000001 | 0x20000000).fcs_length == 4
    assert FileHeader(linktype=0x30000001).fcs_length is None
    assert FileHeader(linktype=0x30000001).link_type == 1


def test_writer_stamps_packets_without_a_capture_time(tmp_path):
    out = tmp_path / "out.pcap"
    c = config.new()
    config.app(c, "src", "basic.Source", {"size": 60})
    config.app(c, "w", PcapWriter, {"path": str(out)})
    config.link(c, "src.output -> w.input")
    e = run(c, breaths=1)
    e.stop()
    recs = list(pcap.iter_records(out.read_bytes()))
    assert len(recs) == 1023
    assert all(r.ts_sec > 1700000000 and r.orig_len == 60 for r, _ in recs)


def test_a_changed_packet_loses_its_capture_time(tmp_path):
    out = tmp_path / "out.pcap"
    c = reader_to(tmp_path, pcap.build_file(capture(3)), "basic.Truncate", {"size": 40})
    config.app(c, "w", PcapWriter, {"path": str(out)})
    config.link(c, "out.output -> w.input")
    run(c).stop()
    recs = list(pcap.iter_records(out.read_bytes()))
    assert [(r.incl_len, r.orig_len) for r, _ in recs] == [(40, 40)] * 3
    assert all(r.ts_sec > 1700000003 for r, _ in recs)


def test_packets_a_full_disk_lost_are_counted_dropped_not_written(tmp_path, capsys):
    # /dev/full: every write fails with ENOSPC, like a disk that filled up.
    c = reader_to(tmp_path, pcap.build_file(capture(100) + capture(200, size=9000)),
                  PcapWriter, {"path": "/dev/full"})
    e = run(c)
    writer = e.apps["out"]
    e.stop()
    s = writer.stats.snapshot()
    assert (s["packets"], s["bytes"], s["dropped"], s["write_errors"]) == (0, 0, 300, 1)
    assert "/dev/full: write failed: No space left on device" in capsys.readouterr().err


def test_writer_refuses_a_snaplen_of_zero(tmp_path):
    with pytest.raises(ConfigError, match="snaplen 0 is outside"):
        config.app(c := config.new(), "w", PcapWriter, {"path": str(tmp_path / "o"),
                                                        "snaplen": 0})
        Engine().configure(c)


def cli_run(tmp_path, monkeypatch, data: bytes):
    from click.testing import CliRunner

    from snabbpy.cli import main

    monkeypatch.setenv("SNABBPY_SHM", str(tmp_path / "shm"))
    (tmp_path / "in.pcap").write_bytes(data)
    cfg = tmp_path / "g.yaml"
    cfg.write_text(f"""
apps:
  reader: {{class: pcap.PcapReader, config: {{path: "{tmp_path / 'in.pcap'}"}}}}
  sink: {{class: basic.Sink}}
links:
  - reader.output -> sink.input
""")
    return CliRunner().invoke(
        main, ["run", str(cfg), "--duration", "0.2", "--report-interval", "0"])


def test_snabbpy_run_of_a_file_that_is_not_pcap_is_one_line_and_status_2(tmp_path, monkeypatch):
    r = cli_run(tmp_path, monkeypatch, b"hello, this is text\n" * 3)
    assert r.exit_code == 2
    assert r.stderr.startswith("snabbpy: error: ") and "app 'reader': " in r.stderr
    assert "in.pcap: not a classic pcap file: unknown magic 0x68656c6c" in r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_snabbpy_run_of_a_truncated_file_reports_where_and_finishes(tmp_path, monkeypatch):
    r = cli_run(tmp_path, monkeypatch, pcap.build_file(capture(16)) + bytes(8))
    assert r.exit_code == 0
    assert "record 17 at offset 1240: truncated header (8 of 16 bytes); stopped reading" \
        in r.stderr and "Traceback" not in r.stderr
    assert "16 sent on reader.output -> sink.input" in r.stdout
    assert "error: " in r.stdout and "errors: 1" in r.stdout
