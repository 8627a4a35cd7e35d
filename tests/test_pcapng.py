"""pcapng both ways, against tshark/editcap: captures they write are read
(sections, interfaces, resolutions, byte orders, simple packet blocks,
unknown blocks, bad blocks), and what PcapWriter writes they read without
a warning, every packet, timestamp and interface kept."""

import struct

import pytest
from helpers import run
from pcap_tools import frames, tool

from snabbpy.apps.basic import Sink, Source
from snabbpy.apps.pcap import PcapReader, PcapWriter
from snabbpy.core import config
from snabbpy.lib import pcap, pcapng
from snabbpy.lib.pcap import FileHeader, RecordHeader

pytestmark = pytest.mark.usefixtures("no_leaks")


def copy(src, out, **writer_conf) -> dict:
    c = config.new()
    config.app(c, "r", PcapReader, {"path": str(src)})
    config.app(c, "w", PcapWriter, {"path": str(out), **writer_conf})
    config.link(c, "r.output -> w.input")
    e = run(c)
    counters = e.counters()["apps"]
    e.stop()
    return counters


def classic(tmp_path, n=20, nanosecond=False, linktype=1, name="in.pcap"):
    recs = [(RecordHeader(1700000000 + i, 1000 * i + 7, 60 + i, 64 + i), bytes([i]) * (60 + i))
            for i in range(n)]
    path = tmp_path / name
    path.write_bytes(pcap.build_file(recs, FileHeader(nanosecond=nanosecond, linktype=linktype)))
    return path


def editcap_ng(tmp_path, src, name="in.pcapng", *extra):
    out = tmp_path / name
    tool("editcap", "-F", "pcapng", *extra, str(src), str(out))
    return out


@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcapng_written_by_editcap_round_trips_through_snabbpy(tmp_path, nanosecond):
    ng = editcap_ng(tmp_path, classic(tmp_path, nanosecond=nanosecond))
    out = tmp_path / "out.pcapng"
    stats = copy(ng, out)
    assert stats["r"]["packets"] == 20 and stats["r"]["errors"] == 0
    assert frames(out) == frames(ng)


def test_pcapng_to_classic_keeps_packets_and_times(tmp_path):
    src = classic(tmp_path)
    ng = editcap_ng(tmp_path, src)
    out = tmp_path / "out.pcap"
    copy(ng, out)
    assert out.read_bytes() == src.read_bytes()


def test_classic_to_pcapng_by_extension_and_by_format(tmp_path):
    src = classic(tmp_path, linktype=101)
    for out, conf in ((tmp_path / "a.pcapng", {}), (tmp_path / "b.cap", {"format": "pcapng"})):
        copy(src, out, **conf)
        assert out.read_bytes()[:4] == pcapng.MAGIC
        assert [f.split("\t")[:3] for f in frames(out)] == \
            [f.split("\t")[:3] for f in frames(src)]
        tcpdump_out, err = tool("tcpdump", "-nn", "-r", str(out))
        assert "RAW" in err or "Raw" in err or "raw" in err.lower(), err
        assert len(tcpdump_out.splitlines()) == 20


def test_several_sections_and_interfaces_keep_their_ids(tmp_path):
    a = editcap_ng(tmp_path, classic(tmp_path, 5, name="a.pcap"), "a.pcapng")
    b = editcap_ng(tmp_path, classic(tmp_path, 7, nanosecond=True, linktype=101,
                                     name="b.pcap"), "b.pcapng")
    merged = tmp_path / "m.pcapng"
    tool("mergecap", "-F", "pcapng", "-w", str(merged), str(a), str(b))
    two = tmp_path / "two.pcapng"   # two sections: a file after another
    two.write_bytes(a.read_bytes() + b.read_bytes())
    for src in (merged, two):
        out = tmp_path / "out.pcapng"
        stats = copy(src, out)
        assert stats["r"]["packets"] == 12 and stats["r"]["errors"] == 0
        got = frames(out)
        # one output section: the second section's interface 0 becomes 1
        assert [f.split("\t")[:3] for f in got] == [f.split("\t")[:3] for f in frames(src)]
        if src == merged:
            assert got == frames(merged)
        assert {line.split("\t")[3] for line in got} == {"0", "1"}


def test_big_endian_sections_tsresol_tsoffset_simple_and_unknown_blocks(tmp_path):
    o = ">"
    idb = pcapng.build_interface(pcapng.Interface(1, 0, 1000, 100), o)  # ms, +100 s
    epb = struct.pack(o + "IIIII", 0, 0, 1234567, 60, 70) + bytes(range(60))
    spb = struct.pack(o + "I", 60) + bytes(60)
    opb = struct.pack(o + "HHIIII", 0, 0, 0, 2000, 61, 61) + bytes(61)   # obsolete block
    data = (pcapng.build_section_header(o) + pcapng.block(0x0BAD, b"xyz", o) + idb
            + pcapng.block(pcapng.EPB_TYPE, epb, o) + pcapng.block(pcapng.SPB_TYPE, spb, o)
            + pcapng.block(pcapng.OPB_TYPE, opb, o))
    src, out = tmp_path / "be.pcapng", tmp_path / "out.pcapng"
    src.write_bytes(data)
    stats = copy(src, out)
    assert (stats["r"]["packets"], stats["r"]["skipped_blocks"]) == (3, 1)
    got = [f.split("\t") for f in frames(out)]
    assert got[0][0].startswith("1334.567") and got[0][1:] == ["70", "60", "0"]
    assert got[2][0].startswith("102.000") and got[2][1:] == ["61", "61", "0"]


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:-6], "truncated block"),
    (lambda d: d[:-4] + struct.pack("<I", 99), "trailing block length differs"),
    (lambda d: d[:4] + struct.pack("<I", 13) + d[8:], "bad block total length 13"),
])
def test_a_bad_block_is_reported_like_a_bad_record(tmp_path, capsys, damage, message):
    ng = editcap_ng(tmp_path, classic(tmp_path, 3, name="s.pcap"))
    data = ng.read_bytes()
    last = struct.unpack_from("<I", data, len(data) - 4)[0]
    start = len(data) - last
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(data[:start] + damage(data[start:]))
    c = config.new()
    config.app(c, "r", PcapReader, {"path": str(bad)})
    config.app(c, "s", Sink)
    config.link(c, "r.output -> s.input")
    e = run(c)
    stats = e.counters()["apps"]["r"]
    e.stop()
    assert (stats["packets"], stats["errors"]) == (2, 1)
    err = capsys.readouterr().err
    assert "bad.pcapng: block" in err and message in err, err


def test_source_to_pcapng_reads_in_tshark_and_tcpdump(tmp_path):
    out = tmp_path / "s.pcapng"
    c = config.new()
    config.app(c, "s", Source, {"size": 60})
    config.app(c, "w", PcapWriter, {"path": str(out), "nanosecond": True})
    config.link(c, "s.output -> w.input")
    e = run(c, 3)
    n = e.counters()["apps"]["w"]["packets"]
    e.stop()
    assert len(frames(out)) == n > 0
    tcpdump_out, _ = tool("tcpdump", "-nn", "-r", str(out))
    assert len(tcpdump_out.splitlines()) == n


def test_loop_over_a_pcapng_file_keeps_its_interfaces(tmp_path):
    ng = editcap_ng(tmp_path, classic(tmp_path, 4))
    c = config.new()
    config.app(c, "r", PcapReader, {"path": str(ng), "loop": True})
    config.app(c, "s", Sink)
    config.link(c, "r.output -> s.input")
    e = run(c, 20)
    stats = e.counters()["apps"]["r"]
    e.stop()
    assert stats["loops"] >= 3 and stats["errors"] == 0 and stats["packets"] >= 16


def test_linktype_of_a_packet_names_its_capture(tmp_path):
    from snabbpy.apps.pcap import linktype
    from snabbpy.core import packet
    from snabbpy.core.link import Link
    src = classic(tmp_path, 2, linktype=113)
    r = PcapReader({"path": str(src), "loop": False})
    r.name, r.output = "r", {"output": Link("l")}
    r.stats = _Stats()
    r.link()
    r.pull()
    p = r.output["output"].receive()
    assert linktype(p) == 113
    packet.shiftleft(p, 1)   # changed: no longer the captured packet
    assert linktype(p) is None
    packet.free(p)
    while not r.output["output"].empty():
        packet.free(r.output["output"].receive())
    r.stop()


class _Stats(dict):
    def add(self, name, n=1):
        self[name] = self.get(name, 0) + n


def test_interface_options_are_kept_across_byte_orders(tmp_path):
    speed = struct.pack("<Q", 10**9)   # Interface holds numbers little-endian
    iface = pcapng.Interface(1, 96, 10**9, 0, ((2, b"eth7"), (8, speed)))
    be = pcapng.build_interface(iface, ">")
    parsed = pcapng.parse_interface(be, ">", "x")
    assert parsed.units == 10**9 and parsed.snaplen == 96
    assert dict(parsed.options)[8] == struct.pack("<Q", 10**9)   # held little-endian
    epb = struct.pack(">IIIII", 0, 0, 5, 60, 60) + bytes(60)
    src, out = tmp_path / "be.pcapng", tmp_path / "out.pcapng"
    src.write_bytes(pcapng.build_section_header(">") + be + pcapng.block(6, epb, ">"))
    copy(src, out)
    fields = ["-T", "fields", "-e", "frame.interface_name", "-e", "frame.time_epoch"]
    for f in (src, out):
        got, err = tool("tshark", "-r", str(f), *fields)
        assert not err and got.split() == ["eth7", "0.000000005"], (got, err)
    got, _ = tool("tshark", "-r", str(out), "-q", "-z", "io,phs")  # reads it all
    blob = out.read_bytes()
    assert struct.pack("<HHQ", 8, 8, 10**9) in blob   # if_speed written little-endian


def test_a_dumpcap_capture_on_lo_round_trips(tmp_path):
    # dumpcap writes interface options (name, filter, OS) and an interface
    # statistics block at the end: kept or skipped, never an error.
    import subprocess

    from helpers import need_root
    need_root("dumpcap", "ping")
    cap = tmp_path / "lo.pcapng"
    p = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-c", "6", "-f", "icmp", "-w", str(cap)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(60):
            subprocess.run(["ping", "-c", "1", "-W", "1", "127.0.0.1"], capture_output=True)
            if p.poll() is not None:
                break
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out = tmp_path / "out.pcapng"
    stats = copy(cap, out)
    assert stats["r"]["packets"] == 6 and stats["r"]["errors"] == 0
    assert stats["r"]["skipped_blocks"] >= 1   # the interface statistics block
    assert frames(out) == frames(cap)
    name, _ = tool("tshark", "-r", str(out), "-T", "fields", "-e", "frame.interface_name")
    assert set(name.split()) == {"lo"}


def _packet_times(data: bytes) -> list[tuple[int, int]]:
    """(interface, timestamp) of each enhanced packet block of a
    little-endian pcapng file."""
    out, pos = [], 0
    while pos < len(data):
        btype, length = struct.unpack_from("<II", data, pos)
        if btype == pcapng.EPB_TYPE:
            iface, hi, lo = struct.unpack_from("<III", data, pos + 8)
            out.append((iface, hi << 32 | lo))
        pos += length
    return out


def test_units_finer_than_2_32_and_extreme_tsoffset_keep_their_times(tmp_path):
    # Found by the pcap_read fuzz target (corpus regress-pcapng-*): the
    # writer's nanoseconds-to-units product overflowed 64 bits for
    # picosecond (and 2^-40 s) interfaces, and an if_tsoffset of -2^63 was
    # a signed overflow.
    o = "<"
    pkt = bytes(range(60))

    def epb(iface, ts):
        body = struct.pack(o + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, 60, 60) + pkt
        return pcapng.block(pcapng.EPB_TYPE, body, o)

    ps, fine = 17_000_000 * 10**12 + 123_456_789_012, (10_000_000 << 40) + 987_654_321
    data = (pcapng.build_section_header(o)
            + pcapng.build_interface(pcapng.Interface(1, 0, 10**12), o)
            + pcapng.build_interface(pcapng.Interface(1, 0, 1 << 40), o)
            + pcapng.build_interface(pcapng.Interface(1, 0, 10**6, -(1 << 63)), o)
            + epb(0, ps) + epb(1, fine) + epb(2, 123))
    src, out = tmp_path / "fine.pcapng", tmp_path / "out.pcapng"
    src.write_bytes(data)
    stats = copy(src, out)
    assert stats["r"]["packets"] == 3 and stats["w"]["packets"] == 3
    # Finer than 2^-32 s, a timestamp is carried as nanoseconds.
    fine_ns = (987_654_321 * 10**9) >> 40
    assert _packet_times(out.read_bytes()) == [
        (0, ps // 1000 * 1000),
        (1, (10_000_000 << 40) + (fine_ns << 40) // 10**9),
        (2, 123)]
