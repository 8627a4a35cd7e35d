"""VhostUser with 2 queue pairs against DPDK's virtio_user with queues=2
(testpmd txonly, then rxonly): every packet counted on both sides, and each
queue carries its share. Needs dpdk-testpmd (scripts/install-dpdk.sh).

virtio_user keeps its control queue to itself (``cq=1``: it emulates it)
and enables the second pair with SET_VRING_ENABLE, so these tests prove
MQ, GET_QUEUE_NUM and the rings of pair 1 against a peer no one here wrote."""

from __future__ import annotations

import pytest
from helpers_testpmd import TestPmd, need_testpmd
from test_vhost_dpdk import CountedSource, assert_clean, running, wait_until

from snabbpy.core import config

pytestmark = pytest.mark.interop


@pytest.fixture(autouse=True)
def testpmd_installed():
    """Fails in CI, skips elsewhere, when dpdk-testpmd is missing."""
    need_testpmd()


def two_pair_graph(sock):
    c = config.new()
    config.app(c, "vhost", "vhost.VhostUser", {"socket_path": sock, "queues": 2})
    return c


def test_testpmd_txonly_on_two_queues_into_two_sinks(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    c = two_pair_graph(sock)
    for k, port in ((0, "output"), (1, "output1")):
        config.app(c, f"sink{k}", "basic.Sink")
        config.link(c, f"vhost.{port} -> sink{k}.input")
    with running(c) as engine:
        vhost = engine.apps["vhost"]
        with TestPmd.virtio_user(sock, queues=2, forward_mode="txonly", fwd_cpu=0) as pmd:
            pmd.start_forwarding()
            wait_until(lambda: min(vhost.stats["txq_packets"],
                                   vhost.stats["txq1_packets"]) >= 10000, "both queues")
            pmd.stop_forwarding()
            sent = pmd.port_stats().tx_packets
            wait_until(lambda: vhost.stats["txq_packets"] + vhost.stats["txq1_packets"] == sent,
                       "the last packets")
        stats = vhost.stats.snapshot()
        sinks = [engine.links[f"vhost.{p} -> sink{k}.input"].stats()
                 for k, p in ((0, "output"), (1, "output1"))]
    assert stats["txq_packets"] > 0 and stats["txq1_packets"] > 0
    assert sinks[0]["rxpackets"] + sinks[1]["rxpackets"] == sent
    assert sinks[0]["rxpackets"] == stats["txq_packets"] and sinks[1]["txdrop"] == 0
    assert stats["protocol_errors"] == 0
    assert_clean(stats, "txq_")
    assert_clean({k.replace("txq1_", "txq_"): v for k, v in stats.items()}, "txq_")


def test_two_sources_into_testpmd_rxonly_on_two_queues(tmp_path, no_leaks):
    sock, count = str(tmp_path / "vhost.sock"), 20000
    c = two_pair_graph(sock)
    for k, port in ((0, "input"), (1, "input1")):
        config.app(c, f"source{k}", CountedSource, {"count": count, "size": 60})
        config.link(c, f"source{k}.output -> vhost.{port}")
    with running(c) as engine:
        vhost = engine.apps["vhost"]
        with TestPmd.virtio_user(sock, queues=2, forward_mode="rxonly", fwd_cpu=0) as pmd:
            pmd.start_forwarding()
            wait_until(lambda: all(p.rx.running for p in vhost.pairs), "both rx rings")
            for k in (0, 1):
                engine.apps[f"source{k}"].go = True
            wait_until(lambda: pmd.port_stats().rx_packets >= 2 * count, f"{2 * count} packets")
            received = pmd.port_stats()
        stats = vhost.stats.snapshot()
    assert received.rx_packets == 2 * count
    assert stats["rxq_packets"] == stats["rxq1_packets"] == count
    assert received.rx_bytes == 2 * count * 60
    assert stats["rxq_drop_not_ready"] == stats["rxq1_drop_not_ready"] == 0
    assert_clean(stats, "rxq_")
    assert_clean({k.replace("rxq1_", "rxq_"): v for k, v in stats.items()}, "rxq_")
