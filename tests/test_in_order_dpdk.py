"""VIRTIO_F_IN_ORDER against DPDK's virtio_user, an in-order driver no one
here wrote (``in_order=1``): on a packed ring its transmit cleanup
(virtio_xmit_cleanup_inorder_packed) reads one used descriptor a batch
and counts the skipped slots itself, so a wrong id or a wrong skip would
stall or corrupt its ring; on a split ring its in-order receive path
takes the used entries as the buffers in ring order. Every packet
counted, both ways, and the negotiated features checked. Needs
dpdk-testpmd (scripts/install-dpdk.sh)."""

from __future__ import annotations

import pytest
from helpers_testpmd import TestPmd, need_testpmd
from test_vhost_dpdk import running, source_into_rxonly, txonly_into_sink, vhost_graph, wait_until

from snabbpy.core.native import lib
from snabbpy.lib.virtio.constants import Feature

pytestmark = pytest.mark.interop
IN_ORDER = 1 << Feature.IN_ORDER


@pytest.fixture(autouse=True)
def testpmd_installed():
    """Fails in CI, skips elsewhere, when dpdk-testpmd is missing."""
    need_testpmd()


def _in_order(vhost) -> None:
    assert vhost.device.features & IN_ORDER
    assert vhost.device.tx.q.flags & lib.PD_F_IN_ORDER  # (a split ring has no use for it)


@pytest.mark.parametrize("ring", ["packed", "split"])
@pytest.mark.parametrize("size", [60, 1500, "9000 in 5 segments"])
def test_testpmd_in_order_txonly_every_packet_counted(tmp_path, no_leaks, ring, size):
    """30000 packets are 117 laps of the 256-slot ring; 9000 bytes in 5
    segments go through indirect tables, one ring slot a chain."""
    txonly_into_sink(tmp_path, size, ring, 30000, check=_in_order, in_order=True)


@pytest.mark.parametrize("ring", ["packed", "split"])
@pytest.mark.parametrize("size", [60, 9000])
def test_source_into_testpmd_in_order_rxonly(tmp_path, no_leaks, ring, size):
    """To the guest: a used descriptor per buffer, in ring order (9000
    bytes merged over five 2 KiB mbufs)."""
    source_into_rxonly(tmp_path, size, ring, 20000, check=_in_order, in_order=True)


@pytest.mark.parametrize("ours, theirs", [(False, True), (True, False)])
def test_in_order_off_on_either_side_is_not_negotiated(tmp_path, no_leaks, ours, theirs):
    sock = str(tmp_path / "vhost.sock")
    with running(vhost_graph(sock, "from_guest", in_order=ours)) as engine:
        vhost = engine.apps["vhost"]
        with TestPmd.virtio_user(sock, packed=True, in_order=theirs, forward_mode="txonly",
                                 fwd_cpu=0) as pmd:
            pmd.start_forwarding()
            wait_until(lambda: vhost.stats["txq_packets"] >= 10000, "10000 packets")
            assert vhost.device.tx.packed and not vhost.device.features & IN_ORDER
            assert not vhost.device.tx.q.flags & lib.PD_F_IN_ORDER
