"""VhostUser against DPDK's virtio_user, a frontend no one here wrote:
testpmd txonly -> VhostUser -> Sink, and Source -> VhostUser -> testpmd
rxonly, from 60-byte to 9000-byte frames, on split and on packed rings
(``packed_vq=1``); then client mode and a testpmd that leaves and comes
back. Needs dpdk-testpmd (scripts/install-dpdk.sh).

testpmd settings for jumbo frames (found here, see also the README):
receiving 9000 bytes needs nothing (our MRG_RXBUF spreads a frame over
several 2 KiB mbufs); sending them needs ``--mbuf-size=10240`` BEFORE
``--txpkts=9000`` (testpmd checks txpkts against the mbuf size it has seen
so far and silently keeps 64 otherwise), or several segments
(``--txpkts=2000,2000,2000,2000,1000``).
"""

from __future__ import annotations

import os
import time

import pytest
from helpers_testpmd import TestPmd, have_testpmd

from snabbpy.core import config
from snabbpy.core.app import App, Param
from snabbpy.core.engine import running_in_thread
from snabbpy.core.native import lib

pytestmark = pytest.mark.interop
BAD = ("bad_avail_idx", "bad_index", "bad_addr", "bad_chain", "bad_indirect",
       "bad_direction", "bad_header", "too_long", "no_memory")


@pytest.fixture(autouse=True)
def testpmd_installed():
    """Fails in CI, skips elsewhere, when dpdk-testpmd is missing."""
    if not have_testpmd():
        if os.environ.get("CI"):
            pytest.fail("dpdk-testpmd missing: run scripts/install-dpdk.sh")
        pytest.skip("dpdk-testpmd missing: run scripts/install-dpdk.sh")


class CountedSource(App):
    """Sends exactly ``count`` packets of ``size`` bytes, as fast as the
    output link takes them, once the test sets ``go``."""

    config = {"count": Param(int), "size": Param(int)}

    def __init__(self, conf: dict) -> None:
        from snabbpy.core import packet

        self.left, self.go = conf["count"], False
        self.template = packet.from_bytes(bytes(range(256)) * (conf["size"] // 256)
                                          + bytes(conf["size"] % 256))

    def pull(self) -> None:
        if self.go and self.left:
            self.left -= lib.link_fill_clone(self.output["output"].c, self.template, self.left)

    def stop(self) -> None:
        from snabbpy.core import packet

        packet.free(self.template)


def running(c):
    """Runs the graph ``c`` in a thread of its own while the test talks to
    testpmd; stops it (and every app) on the way out."""
    return running_in_thread(c)


def wait_until(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def vhost_graph(sock, direction, **vhost):
    c = config.new()
    config.app(c, "vhost", "vhost.VhostUser", {"socket_path": sock, **vhost})
    if direction == "from_guest":
        config.app(c, "sink", "basic.Sink")
        config.link(c, "vhost.output -> sink.input")
    return c


def assert_clean(stats, queue):
    bad = {k: v for k, v in stats.items() if k.startswith(queue) and k[4:] in BAD and v}
    assert not bad, bad


TX_SIZES = {60: ("--txpkts=60",), 1500: ("--txpkts=1500",),
            9000: ("--mbuf-size=10240", "--txpkts=9000"),
            "9000 in 5 segments": ("--txpkts=2000,2000,2000,2000,1000",)}


def txonly_into_sink(tmp_path, size, ring: str, count: int, check=None, **pmd_args) -> dict:
    """testpmd virtio_user txonly (frames of TX_SIZES[size], ``pmd_args``
    on top) -> VhostUser -> Sink until ``count`` packets, then the last
    ones; every packet counted on both sides, no bad counter. ``check``
    (the VhostUser app) runs while testpmd is still there. Returns the
    app's counters."""
    sock = str(tmp_path / "vhost.sock")
    nbytes = 9000 if isinstance(size, str) else size
    with running(vhost_graph(sock, "from_guest")) as engine:
        vhost = engine.apps["vhost"]
        with TestPmd.virtio_user(sock, packed=ring == "packed", forward_mode="txonly",
                                 fwd_cpu=0, extra_args=TX_SIZES[size], **pmd_args) as pmd:
            pmd.start_forwarding()
            wait_until(lambda: vhost.stats["txq_packets"] >= count, f"{count} packets")
            assert vhost.device.tx.packed == (ring == "packed")
            if check:
                check(vhost)
            pmd.stop_forwarding()
            sent = pmd.port_stats().tx_packets
            wait_until(lambda: vhost.stats["txq_packets"] == sent, "the last packets")
        stats = vhost.stats.snapshot()
        sink = engine.links["vhost.output -> sink.input"].stats()
    assert stats["txq_packets"] == stats["txq_chains"] == sent
    assert stats["txq_bytes"] == sent * nbytes
    assert sink["rxpackets"] == sent and sink["txdrop"] == 0
    assert_clean(stats, "txq_")
    return stats


def source_into_rxonly(tmp_path, size: int, ring: str, count: int, check=None,
                       **pmd_args) -> dict:
    """Source -> VhostUser -> testpmd virtio_user rxonly (``pmd_args`` on
    top), ``count`` packets of ``size`` bytes, every one counted on both
    sides, no bad counter; ``check`` (the VhostUser app) runs once the
    guest's ring is there. Returns the app's counters."""
    sock = str(tmp_path / "vhost.sock")
    c = vhost_graph(sock, "to_guest")
    config.app(c, "source", CountedSource, {"count": count, "size": size})
    config.link(c, "source.output -> vhost.input")
    with running(c) as engine:
        vhost, source = engine.apps["vhost"], engine.apps["source"]
        with TestPmd.virtio_user(sock, packed=ring == "packed", forward_mode="rxonly",
                                 fwd_cpu=0, **pmd_args) as pmd:
            pmd.start_forwarding()
            wait_until(lambda: vhost.device.rx.running, "the guest's rx ring")
            assert vhost.device.rx.packed == (ring == "packed")
            if check:
                check(vhost)
            source.go = True
            wait_until(lambda: pmd.port_stats().rx_packets >= count, f"{count} packets")
            received = pmd.port_stats()
        stats = vhost.stats.snapshot()
    assert received.rx_packets == count == stats["rxq_packets"]
    assert received.rx_bytes == count * size == stats["rxq_bytes"]
    assert_clean(stats, "rxq_")
    return stats


@pytest.mark.parametrize("ring", ["split", "packed"])
@pytest.mark.parametrize("size", list(TX_SIZES))
def test_testpmd_txonly_into_a_sink(tmp_path, no_leaks, size, ring):
    """Packed (``packed_vq=1``): 20000 packets are 78 laps of the 256-slot
    ring, wrap counters flipping; 9000 bytes in 5 segments go through
    indirect tables."""
    txonly_into_sink(tmp_path, size, ring, 20000)


@pytest.mark.parametrize("ring", ["split", "packed"])
@pytest.mark.parametrize("size", [60, 1500, 9000])
def test_source_into_testpmd_rxonly(tmp_path, no_leaks, size, ring):
    source_into_rxonly(tmp_path, size, ring, 20000)


def test_jumbo_frames_without_mrg_rxbuf_are_dropped_and_counted(tmp_path, no_leaks):
    sock, count = str(tmp_path / "vhost.sock"), 100
    c = vhost_graph(sock, "to_guest", mrg_rxbuf=False)
    config.app(c, "source", CountedSource, {"count": count, "size": 9000})
    config.link(c, "source.output -> vhost.input")
    with running(c) as engine:
        vhost, source = engine.apps["vhost"], engine.apps["source"]
        with TestPmd.virtio_user(sock, forward_mode="rxonly", fwd_cpu=0) as pmd:
            pmd.start_forwarding()
            wait_until(lambda: vhost.device.rx.running, "the guest's rx ring")
            source.go = True
            wait_until(lambda: vhost.stats["rxq_too_long"] == count, "the drops")
            assert pmd.port_stats().rx_packets == 0
        assert vhost.stats["rxq_packets"] == 0


def test_client_mode_connects_to_testpmd_as_server(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    pmd = TestPmd.virtio_user(sock, server=True, forward_mode="txonly", fwd_cpu=0)
    pmd.start(wait=False)
    try:
        wait_until(lambda: os.path.exists(sock), "testpmd's socket")
        with running(vhost_graph(sock, "from_guest", is_server=False,
                                 reconnect_interval=0.1)) as engine:
            vhost = engine.apps["vhost"]
            pmd.wait_ready()
            pmd.start_forwarding()
            wait_until(lambda: vhost.stats["txq_packets"] >= 10000, "10000 packets")
            assert vhost.stats["connects"] == 1
    finally:
        pmd.close()


@pytest.mark.parametrize("ring", ["split", "packed"])
def test_a_new_testpmd_after_the_first_quits_is_served(tmp_path, no_leaks, ring):
    sock = str(tmp_path / "vhost.sock")
    with running(vhost_graph(sock, "from_guest")) as engine:
        vhost = engine.apps["vhost"]
        total = 0
        for round_ in (1, 2):
            with TestPmd.virtio_user(sock, packed=ring == "packed", forward_mode="txonly",
                                     fwd_cpu=0) as pmd:
                pmd.start_forwarding()
                wait_until(lambda t=total: vhost.stats["txq_packets"] >= t + 5000, "packets")
                pmd.stop_forwarding()
                total = pmd.port_stats().tx_packets + total
                wait_until(lambda t=total: vhost.stats["txq_packets"] == t, "the last packets")
            wait_until(lambda r=round_: vhost.stats["disconnects"] == r, "the disconnect")
        assert vhost.stats["connects"] == 2 and vhost.channel is None
        assert vhost.device.memory is None
