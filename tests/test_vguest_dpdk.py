"""VGuest against DPDK's net_vhost backend, a peer no one here wrote:
testpmd in io mode loops every packet back, Source -> VGuest -> testpmd ->
VGuest -> Sink, and every packet sent must come back intact.
Needs dpdk-testpmd (scripts/install-dpdk.sh)."""

from __future__ import annotations

import struct
import time

import pytest
from helpers_testpmd import TestPmd, need_testpmd

from snabbpy.apps.vguest.selftest import graph
from snabbpy.apps.vguest.selftest.loopback import WINDOW
from snabbpy.core import config, packet
from snabbpy.core.engine import Engine
from snabbpy.core.link import Link
from snabbpy.lib.virtio import Feature

pytestmark = pytest.mark.interop


@pytest.fixture(autouse=True)
def testpmd_installed():
    """Fails in CI, skips elsewhere, when dpdk-testpmd is missing."""
    need_testpmd()


def loop_through(pmd: TestPmd, sock: str, count: int, size: int, window: int = WINDOW,
                 on_start=None, **nic) -> dict:
    """Sends ``count`` numbered packets through VGuest and back (at most
    ``window`` out at a time); returns counts. ``on_start(engine)`` is
    called once the graph is up."""
    # the window: testpmd io drops what finds our ring full
    engine = graph.start({"vhost_user": sock, **nic}, count, size, window)
    if on_start is not None:
        on_start(engine)
    pmd.wait_link_up()
    pmd.start_forwarding()
    sink = engine.apps["sink"]
    deadline = time.monotonic() + 60
    while sink.received < count and time.monotonic() < deadline:
        engine.breathe()
    result = {"received": sink.received, "corrupt": sink.corrupt,
              **engine.apps["nic"].stats.snapshot()}
    if sink.received != count:  # say where they went
        print(pmd.stop_forwarding(), engine.apps["nic"].report())
    engine.stop()
    return result


@pytest.mark.parametrize("size", [60, 64, 1500, 4000, 9000])
def test_every_packet_comes_back_through_testpmd(tmp_path, no_leaks, size):
    sock = str(tmp_path / "vhost.sock")
    with TestPmd.vhost_backend(sock, forward_mode="io") as pmd:
        counts = loop_through(pmd, sock, 2000, size)
        stats = pmd.port_stats()
    assert counts["received"] == 2000 and counts["corrupt"] == 0
    assert counts["tx_packets"] == counts["rx_packets"] == 2000
    assert stats.rx_packets == stats.tx_packets == 2000
    assert not any(v for k, v in counts.items() if "bad" in k or "oversize" in k)


def test_without_merged_buffers_or_with_event_idx(tmp_path, no_leaks):
    for nic in ({"mrg_rxbuf": False}, {"event_idx": True, "queue_size": 1024}):
        sock = str(tmp_path / "vhost.sock")
        with TestPmd.vhost_backend(sock, forward_mode="io") as pmd:
            counts = loop_through(pmd, sock, 5000, 1500, **nic)
        assert counts["received"] == 5000 and counts["corrupt"] == 0, nic


@pytest.mark.parametrize("size", [3000, 9000])
def test_testpmd_splits_jumbo_frames_into_merged_buffers(tmp_path, no_leaks, size):
    sock = str(tmp_path / "vhost.sock")
    with TestPmd.vhost_backend(sock, forward_mode="io") as pmd:
        # a packet takes size/1024 receive buffers: keep them within the ring
        window = WINDOW * 1024 // (size + 12) or 1
        counts = loop_through(pmd, sock, 1000, size, window, rx_buffer_size=1024)
    assert counts["received"] == 1000 and counts["corrupt"] == 0
    assert counts["rx_bad_len"] == counts["rx_bad_num_buffers"] == 0


def udp_frame(seq: int) -> bytes:
    """An IPv4/UDP frame whose UDP checksum is left to the device (zero)."""
    payload = seq.to_bytes(4, "big") * 12
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 0, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    ip = ip[:10] + struct.pack("!H", 0xFFFF - ones_sum(ip)) + ip[12:]
    udp = struct.pack("!HHHH", 1234, 5678, 8 + len(payload), 0) + payload
    return b"\x02" * 6 + b"\x02\0\0\0\0\1" + b"\x08\x00" + ip + udp


def ones_sum(b: bytes) -> int:
    b += b"\0" * (len(b) % 2)
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def test_checksum_offload_comes_back_with_correct_udp_checksums(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    with TestPmd.vhost_backend(sock, forward_mode="io") as pmd:
        c = config.new()
        config.app(c, "nic", "vguest.VGuest", {"vhost_user": sock, "use_checksum": True})
        engine = Engine()
        engine.configure(c)
        nic = engine.apps["nic"]
        assert nic.device.has(Feature.NET_CSUM)
        to_nic, from_nic = Link(), Link()
        nic.input, nic.output = {"input": to_nic}, {"output": from_nic}
        nic.link()
        pmd.wait_link_up()
        pmd.start_forwarding()
        for seq in range(20):
            to_nic.transmit(packet.from_bytes(udp_frame(seq)))
        back, deadline = [], time.monotonic() + 30
        while len(back) < 20 and time.monotonic() < deadline:
            nic.pull()
            nic.push()
            while not from_nic.empty():
                p = from_nic.receive()
                back.append(packet.to_bytes(p))
                packet.free(p)
        engine.stop()
    assert len(back) == 20
    for frame in back:
        udp = frame[34:]
        pseudo = frame[26:34] + struct.pack("!BBH", 0, 17, len(udp))
        assert udp[6:8] != b"\0\0" and ones_sum(pseudo + udp) == 0xFFFF


def test_vguest_as_server_with_testpmd_connecting(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    pmd = TestPmd.vhost_backend(sock, client=True, forward_mode="io")
    pmd.start(wait=False)
    try:
        pmd.wait_ready()
        counts = loop_through(pmd, sock, 1000, 60, is_server=True)
    finally:
        pmd.close()
    assert counts["received"] == 1000


def test_selftest_with_a_named_socket(tmp_path, no_leaks):
    from snabbpy.apps.vguest import selftest

    sock = str(tmp_path / "vhost.sock")
    with TestPmd.vhost_backend(sock, forward_mode="io") as pmd:
        pmd.start_forwarding()
        assert selftest("--vhost-user", sock, "--packets", "500", "--size", "200") == 0
