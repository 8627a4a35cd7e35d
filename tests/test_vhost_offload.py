"""VhostUser with guest offloads (checksum_offload, tso) against a scripted
frontend: what is offered, a GSO frame from the guest cut into segments on
output, a partial checksum finished, hostile headers dropped and counted."""


import pytest
from helpers import drain, vhost_and_frontend, vhost_app

from snabbpy.core import packet
from snabbpy.core.config import ConfigError
from snabbpy.lib.virtio.constants import Feature, NetHdrFlag, feature_mask
from snabbpy.lib.virtio.net_header import NetHeader
from snabbpy.testing.fake_frontend import WANTED
from snabbpy.testing.gso import GSO_TCPV4, GSO_TCPV6, GSO_UDP, checksums_ok, segment, tcp_frame

OFFLOADS = feature_mask(Feature.NET_CSUM, Feature.NET_HOST_TSO4, Feature.NET_HOST_TSO6,
                        Feature.NET_HOST_ECN)


make_app = vhost_app


@pytest.fixture
def offloading(tmp_path):
    """A VhostUser app with both offloads, and a frontend that took them."""
    with vhost_and_frontend(tmp_path, checksum_offload=True, tso=True) as (app, fe):
        fe.connect(WANTED | OFFLOADS)
        yield app, fe


def gso(frame: bytes, gso_type: int, mss: int) -> bytes:
    l4 = 54 if gso_type == GSO_TCPV6 else 34
    return NetHeader(NetHdrFlag.NEEDS_CSUM, gso_type, l4 + 20, mss, l4, 16).pack()


def test_offloads_are_offered_only_when_configured(tmp_path):
    plain = make_app(tmp_path)
    assert plain.device.offered & OFFLOADS == 0
    plain.stop()
    csum = make_app(tmp_path, checksum_offload=True)
    assert csum.device.offered & OFFLOADS == 1 << Feature.NET_CSUM
    csum.stop()
    with pytest.raises(ConfigError, match="tso: needs checksum_offload"):
        make_app(tmp_path, tso=True)


def test_a_gso_frame_from_the_guest_leaves_as_mss_sized_segments(offloading):
    app, fe = offloading
    assert fe.features & OFFLOADS == OFFLOADS
    frames = [tcp_frame(bytes(range(256)) * 250, partial=True),
              tcp_frame(bytes(30000), v6=True, seq=5, partial=True)]
    fe.rings[1].post_tx(frames[0], header=gso(frames[0], GSO_TCPV4, 1448))
    fe.rings[1].post_tx(frames[1], header=gso(frames[1], GSO_TCPV6, 1428))
    app.pull()
    got = drain(app.output["output"])
    want = segment(frames[0], 1448) + segment(frames[1], 1428)
    assert got == want and all(checksums_ok(s) for s in got)
    assert max(len(s) for s in got) == 1448 + 54
    s = app.stats
    assert (s["txq_gso_frames"], s["txq_gso_segments"], s["txq_packets"]) == (2, 45 + 22, 67)
    assert len(fe.rings[1].take_used()) == 2


def test_a_partial_checksum_is_finished(offloading):
    app, fe = offloading
    frame = tcp_frame(b"hello" * 99, partial=True)
    fe.rings[1].post_tx(frame, header=NetHeader(NetHdrFlag.NEEDS_CSUM, 0, 0, 0, 34, 16).pack())
    app.pull()
    [got] = drain(app.output["output"])
    assert got == tcp_frame(b"hello" * 99) and checksums_ok(got)
    assert app.stats["txq_csum_finished"] == 1


def test_hostile_headers_are_dropped_and_counted(offloading):
    app, fe = offloading
    frame = tcp_frame(bytes(5000), partial=True)
    hostile = [
        (NetHeader(NetHdrFlag.NEEDS_CSUM, 0, 0, 0, len(frame), 0), "bad_csum"),  # past the end
        (NetHeader(NetHdrFlag.NEEDS_CSUM, 0, 0, 0, 34, 0xFFFF), "bad_csum"),
        (NetHeader(0, GSO_UDP, 0, 1400, 34, 6), "bad_gso_type"),  # UFO: not offered
        (NetHeader(0, GSO_TCPV6, 54, 1400, 34, 16), "bad_gso_frame"),  # an IPv4 frame
        (NetHeader(0, GSO_TCPV4, 54, 0, 34, 16), "bad_gso_size"),
    ]
    for header, _ in hostile:
        fe.rings[1].post_tx(frame, header=header.pack())
    # hdr_len is only a hint: one past the frame's end changes nothing
    fe.rings[1].post_tx(frame, header=NetHeader(0, GSO_TCPV4, 60000, 1000, 34, 16).pack())
    app.pull()
    assert drain(app.output["output"]) == segment(frame, 1000)
    for name in {n for _, n in hostile}:
        assert app.stats[f"txq_{name}"] == sum(n == name for _, n in hostile)
    assert len(fe.rings[1].take_used()) == len(hostile) + 1  # every chain given back


def test_a_gso_frame_waits_in_the_ring_until_the_link_has_room(offloading):
    app, fe = offloading
    out = app.output["output"]
    for _ in range(1000):
        out.transmit(packet.from_bytes(b"x" * 60))
    frame = tcp_frame(bytes(64000), partial=True)
    fe.rings[1].post_tx(frame, header=gso(frame, GSO_TCPV4, 1448))
    app.pull()
    assert fe.rings[1].take_used() == [] and app.stats["txq_gso_frames"] == 0
    assert len(drain(out)) == 1000
    app.pull()
    assert drain(out) == segment(frame, 1448) and len(fe.rings[1].take_used()) == 1


def test_without_the_keys_an_offload_header_is_refused_as_before(tmp_path):
    with vhost_and_frontend(tmp_path) as (app, fe):
        fe.connect()
        frame = tcp_frame(bytes(3000), partial=True)
        fe.rings[1].post_tx(frame, header=gso(frame, GSO_TCPV4, 1448))
        fe.rings[1].post_tx(frame, header=NetHeader(NetHdrFlag.NEEDS_CSUM, 0, 0, 0, 34,
                                                    16).pack())
        app.pull()
        assert app.output["output"].empty() and app.stats["txq_bad_header"] == 2
