"""The pcap codec (snabbpy.lib.pcap): headers in both byte orders and
units, and every fault it reports, with where."""

import struct

import pytest

from snabbpy.lib import pcap
from snabbpy.lib.pcap import FileHeader, PcapError, RecordHeader


def records(n: int, size: int = 60) -> list[tuple[RecordHeader, bytes]]:
    return [(RecordHeader(1000 + i, i, size, size), bytes([i % 256]) * size) for i in range(n)]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_file_header_round_trips_in_both_orders_and_units(order, nanosecond):
    h = FileHeader(order, nanosecond, snaplen=65535)
    data = pcap.build_file_header(h)
    assert len(data) == pcap.FILE_HEADER_SIZE
    assert pcap.parse_file_header(data) == h


def test_magic_bytes_are_those_tcpdump_writes_on_little_endian():
    assert pcap.build_file_header(FileHeader("<"))[:4] == bytes.fromhex("d4c3b2a1")
    assert pcap.build_file_header(FileHeader(">", nanosecond=True))[:4] == bytes.fromhex(
        "a1b23c4d")


def test_record_header_round_trips():
    r = RecordHeader(1, 2, 3, 4)
    for order in "<>":
        h = FileHeader(order)
        assert pcap.parse_record_header(pcap.build_record_header(r, order), 0, h) == r


def test_iter_records_yields_every_packet_of_a_built_file():
    recs = records(5)
    assert list(pcap.iter_records(pcap.build_file(recs))) == recs


def test_unknown_magic_is_named():
    with pytest.raises(PcapError, match=r"^x.bin: not a classic pcap file: unknown magic "
                                        r"0x7f454c46$"):
        pcap.parse_file_header(b"\x7fELF" + bytes(20), "x.bin")


def test_pcapng_files_get_a_hint_where_they_are_read():
    with pytest.raises(PcapError, match=r"a pcapng file: snabbpy.lib.pcapng and PcapReader"):
        pcap.parse_file_header(pcap.PCAPNG_MAGIC + bytes(20))


def test_empty_file_is_a_truncated_global_header():
    with pytest.raises(PcapError, match=r"truncated global header \(0 of 24 bytes\)"):
        pcap.parse_file_header(b"", "empty.pcap")


def test_short_global_header_after_a_good_magic():
    data = pcap.build_file_header()[:10]
    with pytest.raises(PcapError, match=r"f.pcap: truncated global header \(10 of 24 bytes\)"):
        pcap.parse_file_header(data, "f.pcap")


def test_unsupported_version():
    data = bytearray(pcap.build_file_header())
    struct.pack_into("<H", data, 4, 3)
    with pytest.raises(PcapError, match=r"unsupported pcap version 3.4"):
        pcap.parse_file_header(bytes(data))


def test_truncated_record_header_says_record_and_offset():
    data = pcap.build_file(records(16)) + bytes(8)
    with pytest.raises(PcapError) as err:
        list(pcap.iter_records(data, "file.pcap"))
    assert str(err.value) == (
        f"file.pcap: record 17 at offset {24 + 16 * 76}: truncated header (8 of 16 bytes)")


def test_truncated_packet_says_how_much_is_missing():
    data = pcap.build_file(records(3))[:-10]
    with pytest.raises(PcapError, match=r"record 3 at offset 176: truncated packet \(50 of 60 "):
        list(pcap.iter_records(data, "cut.pcap"))


def test_incl_len_beyond_snaplen_is_refused():
    h = FileHeader(snaplen=65535)
    data = pcap.build_file([(RecordHeader(0, 0, 300000, 300000), bytes(300000))], h)
    with pytest.raises(PcapError, match=r"record 1 at offset 24: incl_len 300000 exceeds "
                                        r"the largest snaplen 262144"):
        list(pcap.iter_records(data, "big.pcap"))


def test_snaplen_zero_means_libpcaps_maximum():
    assert FileHeader(snaplen=0).max_record_length == pcap.MAXIMUM_SNAPLEN
    assert FileHeader(snaplen=2**31).max_record_length == pcap.MAXIMUM_SNAPLEN


def test_records_before_a_fault_are_all_yielded():
    data = pcap.build_file(records(4)) + bytes(3)
    got = []
    with pytest.raises(PcapError):
        for r in pcap.iter_records(data):
            got.append(r)
    assert len(got) == 4


def test_errors_in_a_window_name_the_file_offset():
    data = pcap.build_record_header(RecordHeader(0, 0, 100, 100))
    with pytest.raises(PcapError, match=r"w.pcap: record 9 at offset 5000: truncated packet"):
        pcap.check_record(data, 0, FileHeader(), 9, "w.pcap", base=5000)
