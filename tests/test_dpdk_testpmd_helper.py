"""The testpmd harness works: two testpmds (net_vhost <-> virtio_user) pass packets.

This checks the tool later interop tests and benchmarks rely on, before any
snabbpy app is involved.  Needs dpdk-testpmd (scripts/install-dpdk.sh).
"""

import pytest
from helpers_testpmd import TestPmd, have_testpmd, parse_port_stats, wait_for_socket

needs_testpmd = pytest.mark.skipif(not have_testpmd(), reason="dpdk-testpmd not installed")

STATS = """
  ######################## NIC statistics for port 0  ########################
  RX-packets: 27532384   RX-missed: 0          RX-bytes:  1762072576
  RX-errors: 0
  RX-nombuf:  0         
  TX-packets: 5          TX-errors: 0          TX-bytes:  320

  Throughput (since last show)
  Rx-pps:      3441548          Rx-bps:   1762072576
  Tx-pps:            0          Tx-bps:            0
  ############################################################################
testpmd> """  # noqa: W291  (testpmd pads RX-nombuf with spaces)


def test_port_stats_are_parsed():
    stats = parse_port_stats(STATS)
    assert (stats.rx_packets, stats.rx_bytes, stats.tx_packets) == (27532384, 1762072576, 5)
    assert (stats.rx_pps, stats.tx_pps, stats.rx_nombuf) == (3441548, 0, 0)


def _packets_flow(receiver, polls=200):
    """Poll (bounded) until the receiver has counted packets."""
    for _ in range(polls):
        if receiver.port_stats().rx_packets > 0:
            return True
    return False


@needs_testpmd
@pytest.mark.interop
def test_virtio_user_txonly_reaches_net_vhost_rxonly(tmp_path):
    sock = str(tmp_path / "vhost.sock")
    with TestPmd.vhost_backend(sock, forward_mode="rxonly", fwd_cpu=1) as backend:
        with TestPmd.virtio_user(sock, forward_mode="txonly", fwd_cpu=0, txpkts=64) as frontend:
            backend.wait_link_up()
            frontend.wait_link_up()
            backend.start_forwarding()
            frontend.start_forwarding()
            assert _packets_flow(backend)
            frontend.stop_forwarding()
            backend.stop_forwarding()
            received = backend.port_stats()
            sent = frontend.port_stats()
    assert 0 < received.rx_packets <= sent.tx_packets
    assert received.rx_bytes == 64 * received.rx_packets


@needs_testpmd
@pytest.mark.interop
def test_net_vhost_client_feeds_virtio_user_server(tmp_path):
    sock = str(tmp_path / "vhost.sock")
    frontend = TestPmd.virtio_user(sock, server=True, forward_mode="rxonly", fwd_cpu=0)
    try:
        # A virtio_user server finishes starting only once its backend connects.
        frontend.start(wait=False)
        wait_for_socket(sock)
        with TestPmd.vhost_backend(sock, client=True, forward_mode="txonly", fwd_cpu=1,
                                   txpkts=128) as backend:
            frontend.wait_ready()
            frontend.wait_link_up()
            backend.wait_link_up()
            frontend.start_forwarding()
            backend.start_forwarding()
            assert _packets_flow(frontend)
            backend.stop_forwarding()
    finally:
        frontend.close()
    assert frontend.output.count("Bye...") == 1
