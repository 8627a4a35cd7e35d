"""VGuest against DPDK's net_vhost backend, a peer no one here wrote:
testpmd in io mode loops every packet back, Source -> VGuest -> testpmd ->
VGuest -> Sink, and every packet sent must come back intact.
Needs dpdk-testpmd (scripts/install-dpdk.sh)."""

from __future__ import annotations

import os
import time

import pytest
from helpers_testpmd import TestPmd, have_testpmd

from snabbpy.apps.vguest.loopback import WINDOW, CheckingSink, CountedSource
from snabbpy.core import config
from snabbpy.core.engine import Engine

pytestmark = pytest.mark.interop


@pytest.fixture(autouse=True)
def testpmd_installed():
    """Fails in CI, skips elsewhere, when dpdk-testpmd is missing."""
    if not have_testpmd():
        if os.environ.get("CI"):
            pytest.fail("dpdk-testpmd missing: run scripts/install-dpdk.sh")
        pytest.skip("dpdk-testpmd missing: run scripts/install-dpdk.sh")


def loop_through(pmd: TestPmd, sock: str, count: int, size: int, window: int = WINDOW,
                 **nic) -> dict:
    """Sends ``count`` numbered packets through VGuest and back (at most
    ``window`` out at a time); returns counts."""
    c = config.new()
    config.app(c, "source", CountedSource, {"count": count, "size": size, "window": window})
    config.app(c, "nic", "vguest.VGuest", {"vhost_user": sock, **nic})
    config.app(c, "sink", CheckingSink)
    config.link(c, "source.output -> nic.input")
    config.link(c, "nic.output -> sink.input")
    engine = Engine()
    engine.configure(c)
    pmd.wait_link_up()
    pmd.start_forwarding()
    sink = engine.apps["sink"]
    engine.apps["source"].sink = sink  # testpmd io drops what finds our ring full
    deadline = time.monotonic() + 60
    while sink.received < count and time.monotonic() < deadline:
        engine.breathe()
    result = {"received": sink.received, "corrupt": sink.corrupt,
              **engine.apps["nic"].stats.snapshot()}
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
