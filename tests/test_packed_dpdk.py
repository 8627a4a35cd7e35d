"""Packed virtqueues against DPDK, peers no one here wrote: VhostUser
configured off packed rings with a virtio_user asking for them, and vguest
on a packed ring against testpmd's net_vhost in io loopback, every packet
back. (virtio_user ``packed_vq=1`` txonly and rxonly into VhostUser, every
packet counted: tests/test_vhost_dpdk.py, parametrized by ring.) Needs
dpdk-testpmd (scripts/install-dpdk.sh)."""

from __future__ import annotations

import pytest
from helpers_testpmd import TestPmd, need_testpmd
from test_vguest_dpdk import loop_through
from test_vhost_dpdk import running, vhost_graph, wait_until

from snabbpy.lib.virtio import Feature

pytestmark = pytest.mark.interop


@pytest.fixture(autouse=True)
def testpmd_installed():
    """Fails in CI, skips elsewhere, when dpdk-testpmd is missing."""
    need_testpmd()


def test_packed_off_keeps_virtio_user_on_split_rings(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    with running(vhost_graph(sock, "from_guest", packed=False)) as engine:
        vhost = engine.apps["vhost"]
        with TestPmd.virtio_user(sock, packed=True, forward_mode="txonly", fwd_cpu=0) as pmd:
            pmd.start_forwarding()
            wait_until(lambda: vhost.stats["txq_packets"] >= 5000, "5000 packets")
            assert not vhost.device.tx.packed


def loop_packed(tmp_path, count: int, size: int, **nic) -> tuple[dict, bool]:
    """vguest through testpmd net_vhost io and back; (counts, packed ring?).
    net_vhost offers IN_ORDER: vguest takes it with packed rings, unless
    told not to, and never with split rings."""
    sock = str(tmp_path / "vhost.sock")
    seen = {}

    def note(engine):
        device = engine.apps["nic"].device
        seen["packed"] = type(device.rx).__name__ == "PackedVirtq"
        wanted = seen["packed"] and nic.get("in_order", True)
        assert device.has(Feature.IN_ORDER) == wanted, device.features

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


def test_vguest_packed_without_in_order(tmp_path, no_leaks):
    counts, packed = loop_packed(tmp_path, 3000, 1500, in_order=False)
    assert packed and counts["received"] == 3000 and counts["corrupt"] == 0
    assert counts["tx_packets"] == counts["rx_packets"] == 3000


def test_vguest_packed_off_stays_split(tmp_path, no_leaks):
    counts, packed = loop_packed(tmp_path, 2000, 1500, packed=False)
    assert not packed and counts["received"] == 2000 and counts["corrupt"] == 0
