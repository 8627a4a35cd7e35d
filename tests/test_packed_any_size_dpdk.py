"""Packed rings whose size is no power of two against DPDK 22.11, whose
virtio_user takes any ``queue_size`` with ``packed_vq=1`` (and refuses it
on split rings itself: "split virtqueue size is not power of 2") and whose
vhost library takes any SET_VRING_NUM on a packed ring: testpmd
virtio_user txonly and rxonly against VhostUser, vguest against testpmd
net_vhost in io loopback; many laps each, every packet counted. (QEMU's
virtio-net wants a power of two for rx/tx_queue_size, so the VM lab has
no such peer.) Needs dpdk-testpmd (scripts/install-dpdk.sh)."""

from __future__ import annotations

import pytest
from helpers_testpmd import TestPmd, need_testpmd
from test_packed_dpdk import loop_packed
from test_vhost_dpdk import CountedSource, assert_clean, running, vhost_graph, wait_until

from snabbpy.core import config

pytestmark = pytest.mark.interop


@pytest.fixture(autouse=True)
def testpmd_installed():
    """Fails in CI, skips elsewhere, when dpdk-testpmd is missing."""
    need_testpmd()


@pytest.mark.parametrize("qsize", [1000, 255])
def test_virtio_user_txonly_on_an_odd_packed_ring(tmp_path, no_leaks, qsize):
    """20000 packets: 20 laps of the 1000-slot ring, 78 of the 255-slot one."""
    sock = str(tmp_path / "vhost.sock")
    with running(vhost_graph(sock, "from_guest")) as engine:
        vhost = engine.apps["vhost"]
        with TestPmd.virtio_user(sock, packed=True, queue_size=qsize, forward_mode="txonly",
                                 fwd_cpu=0, extra_args=("--txpkts=60",)) as pmd:
            pmd.start_forwarding()
            wait_until(lambda: vhost.stats["txq_packets"] >= 20000, "20000 packets")
            assert vhost.device.tx.packed and vhost.device.tx.q.size == qsize
            pmd.stop_forwarding()
            sent = pmd.port_stats().tx_packets
            wait_until(lambda: vhost.stats["txq_packets"] == sent, "the last packets")
        stats = vhost.stats.snapshot()
        sink = engine.links["vhost.output -> sink.input"].stats()
    assert stats["txq_bytes"] == sent * 60
    assert sink["rxpackets"] == sent and sink["txdrop"] == 0
    assert_clean(stats, "txq_")


def test_virtio_user_rxonly_on_an_odd_packed_ring(tmp_path, no_leaks):
    sock, count, qsize = str(tmp_path / "vhost.sock"), 20000, 1000
    c = vhost_graph(sock, "to_guest")
    config.app(c, "source", CountedSource, {"count": count, "size": 1500})
    config.link(c, "source.output -> vhost.input")
    with running(c) as engine:
        vhost, source = engine.apps["vhost"], engine.apps["source"]
        with TestPmd.virtio_user(sock, packed=True, queue_size=qsize, forward_mode="rxonly",
                                 fwd_cpu=0) as pmd:
            pmd.start_forwarding()
            wait_until(lambda: vhost.device.rx.running, "the guest's rx ring")
            assert vhost.device.rx.packed and vhost.device.rx.q.size == qsize
            source.go = True
            wait_until(lambda: pmd.port_stats().rx_packets >= count, f"{count} packets")
            received = pmd.port_stats()
        stats = vhost.stats.snapshot()
    assert received.rx_packets == count == stats["rxq_packets"]
    assert received.rx_bytes == count * 1500 == stats["rxq_bytes"]
    assert_clean(stats, "rxq_")


@pytest.mark.parametrize("queue_size", [1000, 100])
def test_vguest_odd_packed_ring_every_packet_back_through_testpmd(tmp_path, no_leaks,
                                                                   queue_size):
    counts, packed = loop_packed(tmp_path, 5000, 1500, queue_size=queue_size,
                                 window=min(64, queue_size // 2))
    assert packed
    assert counts["received"] == 5000 and counts["corrupt"] == 0
    assert counts["tx_packets"] == counts["rx_packets"] == 5000
    assert not any(v for k, v in counts.items() if "bad" in k or "oversize" in k)
