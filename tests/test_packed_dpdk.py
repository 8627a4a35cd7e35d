"""Packed virtqueues against DPDK, peers no one here wrote: testpmd's
virtio_user with ``packed_vq=1`` (txonly and rxonly) against VhostUser,
and vguest on a packed ring against testpmd's net_vhost in io loopback.
Every packet is counted on both sides. Needs dpdk-testpmd
(scripts/install-dpdk.sh)."""

from __future__ import annotations

import pytest
from helpers_testpmd import TestPmd, need_testpmd
from test_vguest_dpdk import loop_through
from test_vhost_dpdk import TX_SIZES, CountedSource, assert_clean, running, vhost_graph, wait_until

from snabbpy.core import config

pytestmark = pytest.mark.interop


@pytest.fixture(autouse=True)
def testpmd_installed():
    """Fails in CI, skips elsewhere, when dpdk-testpmd is missing."""
    need_testpmd()


@pytest.mark.parametrize("size", [60, 1500, 9000, "9000 in 5 segments"])
def test_packed_virtio_user_txonly_into_a_sink(tmp_path, no_leaks, size):
    sock = str(tmp_path / "vhost.sock")
    nbytes = 9000 if isinstance(size, str) else size
    with running(vhost_graph(sock, "from_guest")) as engine:
        vhost = engine.apps["vhost"]
        with TestPmd.virtio_user(sock, packed=True, forward_mode="txonly", fwd_cpu=0,
                                 extra_args=TX_SIZES[size]) as pmd:
            pmd.start_forwarding()
            # 20000 packets: 78 laps of the 256-slot ring, wrap counters flipping
            wait_until(lambda: vhost.stats["txq_packets"] >= 20000, "20000 packets")
            assert vhost.device.tx.packed
            pmd.stop_forwarding()
            sent = pmd.port_stats().tx_packets
            wait_until(lambda: vhost.stats["txq_packets"] == sent, "the last packets")
        stats = vhost.stats.snapshot()
        sink = engine.links["vhost.output -> sink.input"].stats()
    assert stats["txq_bytes"] == sent * nbytes
    assert sink["rxpackets"] == sent and sink["txdrop"] == 0
    assert_clean(stats, "txq_")


@pytest.mark.parametrize("size", [60, 1500, 9000])
def test_source_into_packed_virtio_user_rxonly(tmp_path, no_leaks, size):
    sock, count = str(tmp_path / "vhost.sock"), 20000
    c = vhost_graph(sock, "to_guest")
    config.app(c, "source", CountedSource, {"count": count, "size": size})
    config.link(c, "source.output -> vhost.input")
    with running(c) as engine:
        vhost, source = engine.apps["vhost"], engine.apps["source"]
        with TestPmd.virtio_user(sock, packed=True, forward_mode="rxonly", fwd_cpu=0) as pmd:
            pmd.start_forwarding()
            wait_until(lambda: vhost.device.rx.running, "the guest's rx ring")
            assert vhost.device.rx.packed
            source.go = True
            wait_until(lambda: pmd.port_stats().rx_packets >= count, f"{count} packets")
            received = pmd.port_stats()
        stats = vhost.stats.snapshot()
    assert received.rx_packets == count == stats["rxq_packets"]
    assert received.rx_bytes == count * size == stats["rxq_bytes"]
    assert_clean(stats, "rxq_")


def test_packed_off_keeps_virtio_user_on_split_rings(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    with running(vhost_graph(sock, "from_guest", packed=False)) as engine:
        vhost = engine.apps["vhost"]
        with TestPmd.virtio_user(sock, packed=True, forward_mode="txonly", fwd_cpu=0) as pmd:
            pmd.start_forwarding()
            wait_until(lambda: vhost.stats["txq_packets"] >= 5000, "5000 packets")
            assert not vhost.device.tx.packed


def test_a_new_packed_testpmd_after_the_first_quits_is_served(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    with running(vhost_graph(sock, "from_guest")) as engine:
        vhost = engine.apps["vhost"]
        total = 0
        for round_ in (1, 2):
            with TestPmd.virtio_user(sock, packed=True, forward_mode="txonly",
                                     fwd_cpu=0) as pmd:
                pmd.start_forwarding()
                wait_until(lambda t=total: vhost.stats["txq_packets"] >= t + 5000, "packets")
                pmd.stop_forwarding()
                total = pmd.port_stats().tx_packets + total
                wait_until(lambda t=total: vhost.stats["txq_packets"] == t, "the last packets")
            wait_until(lambda r=round_: vhost.stats["disconnects"] == r, "the disconnect")
        assert vhost.stats["connects"] == 2


def loop_packed(tmp_path, count: int, size: int, **nic) -> tuple[dict, bool]:
    """vguest through testpmd net_vhost io and back; (counts, packed ring?)."""
    sock = str(tmp_path / "vhost.sock")
    seen = {}

    def note(engine):
        seen["packed"] = type(engine.apps["nic"].device.rx).__name__ == "PackedVirtq"

    with TestPmd.vhost_backend(sock, forward_mode="io") as pmd:
        counts = loop_through(pmd, sock, count, size, on_start=note, **nic)
        stats = pmd.port_stats()
    assert stats.rx_packets == stats.tx_packets == count
    return counts, seen["packed"]


@pytest.mark.parametrize("size", [60, 1500, 9000])
def test_vguest_packed_ring_every_packet_back_through_testpmd(tmp_path, no_leaks, size):
    counts, packed = loop_packed(tmp_path, 5000, size)
    assert packed
    assert counts["received"] == 5000 and counts["corrupt"] == 0
    assert counts["tx_packets"] == counts["rx_packets"] == 5000
    assert not any(v for k, v in counts.items() if "bad" in k or "oversize" in k)


def test_vguest_packed_merged_buffers_and_event_idx(tmp_path, no_leaks):
    counts, packed = loop_packed(tmp_path, 1000, 9000, rx_buffer_size=1024, window=64,
                                 event_idx=True, queue_size=1024)
    assert packed and counts["received"] == 1000 and counts["corrupt"] == 0
    assert counts["rx_bad_len"] == counts["rx_bad_num_buffers"] == 0


def test_vguest_packed_off_stays_split(tmp_path, no_leaks):
    counts, packed = loop_packed(tmp_path, 2000, 1500, packed=False)
    assert not packed and counts["received"] == 2000 and counts["corrupt"] == 0
