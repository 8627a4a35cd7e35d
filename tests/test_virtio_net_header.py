"""The virtio-net header: its size from features, and pack/unpack."""

import pytest

from snabbpy.lib.virtio import Feature, NetHdrFlag, NetHdrGso, NetHeader, feature_mask, header_size


def test_header_size_follows_negotiated_features():
    assert header_size(0) == 10
    assert header_size(feature_mask(Feature.NET_MRG_RXBUF)) == 12
    assert header_size(feature_mask(Feature.VERSION_1)) == 12
    assert header_size(feature_mask(Feature.NET_CSUM, Feature.NET_MAC)) == 10


def test_plain_packet_header_is_all_zero():
    assert NetHeader().pack(12) == bytes(12)
    assert NetHeader().pack(10) == bytes(10)


def test_checksum_offload_header_round_trips():
    # A TCP/IPv4 packet asking the device to fill the TCP checksum.
    hdr = NetHeader(flags=NetHdrFlag.NEEDS_CSUM, gso_type=NetHdrGso.TCPV4,
                    hdr_len=54, gso_size=1448, csum_start=34, csum_offset=16, num_buffers=1)
    raw = hdr.pack(12)
    assert raw == bytes([1, 1, 54, 0, 0xA8, 0x05, 34, 0, 16, 0, 1, 0])
    assert NetHeader.unpack(raw, 12) == hdr


def test_legacy_header_has_no_num_buffers():
    raw = NetHeader(csum_start=14, csum_offset=6).pack(10)
    assert len(raw) == 10
    assert NetHeader.unpack(raw + b"payload", 10) == NetHeader(csum_start=14, csum_offset=6)
    with pytest.raises(ValueError, match="num_buffers needs the 12-byte header"):
        NetHeader(num_buffers=2).pack(10)


def test_unpack_reads_from_a_memoryview_of_a_larger_buffer():
    frame = bytearray(NetHeader(num_buffers=3).pack()) + bytes(60)
    assert NetHeader.unpack(memoryview(frame)).num_buffers == 3


@pytest.mark.parametrize("size", [0, 8, 11, 16])
def test_bad_header_size_is_rejected(size):
    with pytest.raises(ValueError, match="must be 10 or 12"):
        NetHeader().pack(size)
    with pytest.raises(ValueError, match="must be 10 or 12"):
        NetHeader.unpack(bytes(16), size)


def test_short_buffer_is_rejected():
    with pytest.raises(ValueError, match="needs 12 bytes, got 5"):
        NetHeader.unpack(bytes(5))
