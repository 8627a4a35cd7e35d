"""VhostUser with 2 queue pairs against DPDK's virtio_user with queues=2
(testpmd txonly, then rxonly): every packet counted on both sides, and each
queue carries its share. Needs dpdk-testpmd (scripts/install-dpdk.sh).

virtio_user keeps its control queue to itself (``cq=1``: it emulates it)
and enables the second pair with SET_VRING_ENABLE, so these tests prove
MQ, GET_QUEUE_NUM and the rings of pair 1 against a peer no one here wrote,
on split rings and on packed ones (``packed_vq=1``)."""

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


#: The two ways to say who serves the pairs: the VhostUser both, or the
#: VhostUser pair 0 and a VhostQueue pair 1 (the layout for one worker per pair).
LAYOUTS = ("one app", "one app per pair")
RINGS = ("split", "packed")


def two_pair_graph(sock, layout):
    """The graph, and for each pair: (app, input port, output port, counter prefix)."""
    c = config.new()
    if layout == "one app":
        config.app(c, "vhost", "vhost.VhostUser", {"socket_path": sock, "queues": 2})
        return c, [("vhost", "input", "output", "q"), ("vhost", "input1", "output1", "q1")]
    config.app(c, "vhost", "vhost.VhostUser", {"socket_path": sock, "queues": 2, "serve": [0]})
    config.app(c, "vhostq1", "vhost.VhostQueue", {"socket_path": sock, "queue": 1})
    return c, [("vhost", "input", "output", "q"), ("vhostq1", "input", "output", "q")]


def pair_counter(engine, pair, name):
    """Counter ``name`` ("rx_packets" ...) of one pair, wherever it is served."""
    app, _, _, suffix = pair
    ring, rest = name.split("_", 1)
    return engine.apps[app].stats[f"{ring}{suffix}_{rest}"]


def assert_rings(vhost, ring):
    """Every data ring of both pairs is of the kind asked for."""
    assert [v.packed for v in vhost.device.vrings[:4]] == [ring == "packed"] * 4


@pytest.mark.parametrize("ring", RINGS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_testpmd_txonly_on_two_queues_into_two_sinks(tmp_path, no_leaks, layout, ring):
    sock = str(tmp_path / "vhost.sock")
    c, pairs = two_pair_graph(sock, layout)
    for k, (app, _, port, _) in enumerate(pairs):
        config.app(c, f"sink{k}", "basic.Sink")
        config.link(c, f"{app}.{port} -> sink{k}.input")
    with running(c) as engine:
        vhost = engine.apps["vhost"]
        def txq(k):
            return pair_counter(engine, pairs[k], "tx_packets")
        with TestPmd.virtio_user(sock, queues=2, packed=ring == "packed",
                                 forward_mode="txonly", fwd_cpu=0) as pmd:
            pmd.start_forwarding()
            wait_until(lambda: min(txq(0), txq(1)) >= 10000, "both queues")
            assert_rings(vhost, ring)
            pmd.stop_forwarding()
            sent = pmd.port_stats().tx_packets
            wait_until(lambda: txq(0) + txq(1) == sent, "the last packets")
        counts = [txq(0), txq(1)]
        sinks = [engine.links[f"{app}.{port} -> sink{k}.input"].stats()
                 for k, (app, _, port, _) in enumerate(pairs)]
        all_stats = [engine.apps[app].stats.snapshot() for app, _, _, _ in pairs]
        errors = vhost.stats["protocol_errors"]
    assert counts[0] > 0 and counts[1] > 0
    assert [s["rxpackets"] for s in sinks] == counts and sum(counts) == sent
    assert sinks[0]["txdrop"] == sinks[1]["txdrop"] == 0 and errors == 0
    for stats, (_, _, _, suffix) in zip(all_stats, pairs, strict=True):
        assert_clean({k.replace(f"txq{suffix[1:]}_", "txq_"): v for k, v in stats.items()},
                     "txq_")


@pytest.mark.parametrize("ring", RINGS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_two_sources_into_testpmd_rxonly_on_two_queues(tmp_path, no_leaks, layout, ring):
    sock, count = str(tmp_path / "vhost.sock"), 20000
    c, pairs = two_pair_graph(sock, layout)
    for k, (app, port, _, _) in enumerate(pairs):
        config.app(c, f"source{k}", CountedSource, {"count": count, "size": 60})
        config.link(c, f"source{k}.output -> {app}.{port}")
    with running(c) as engine:
        vhost = engine.apps["vhost"]
        with TestPmd.virtio_user(sock, queues=2, packed=ring == "packed",
                                 forward_mode="rxonly", fwd_cpu=0) as pmd:
            pmd.start_forwarding()
            wait_until(lambda: all(v.running for v in vhost.device.vrings[:4]), "both pairs")
            assert_rings(vhost, ring)
            for k in (0, 1):
                engine.apps[f"source{k}"].go = True
            wait_until(lambda: pmd.port_stats().rx_packets >= 2 * count, f"{2 * count} packets")
            received = pmd.port_stats()
        rx = [pair_counter(engine, p, "rx_packets") for p in pairs]
        drops = [pair_counter(engine, p, "rx_drop_not_ready") for p in pairs]
    assert received.rx_packets == 2 * count and rx == [count, count]
    assert received.rx_bytes == 2 * count * 60
    assert drops == [0, 0]
