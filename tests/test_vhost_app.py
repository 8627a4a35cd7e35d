"""VhostUser against a scripted frontend (the Frontend codec) over a
socketpair: setup, packets both ways, errors, teardown. No DPDK."""

import os
import socket
import struct
from pathlib import Path

import pytest
from helpers import vhost_and_frontend, vhost_app

from snabbpy.apps.vhost import VhostUser
from snabbpy.core import config, packet
from snabbpy.core.config import ConfigError
from snabbpy.lib.vhost_user import (
    MemoryRegion,
    MemoryTable,
    Request,
    VringAddr,
    VringFile,
    VringState,
)
from snabbpy.lib.virtio.constants import Feature, feature_mask
from snabbpy.testing.fake_frontend import WANTED

R = Request


make_app = vhost_app


@pytest.fixture
def pair(tmp_path):
    """A VhostUser app and a FakeFrontend joined by a socketpair."""
    with vhost_and_frontend(tmp_path) as p:
        yield p


def test_setup_starts_both_rings_with_the_features_negotiated(pair):
    app, fe = pair
    fe.connect()
    d = app.device
    assert d.features == WANTED
    assert d.rx.running and d.tx.running
    assert app.stats["connects"] == 1 and app.stats["protocol_errors"] == 0
    assert "connected" in app.report() and "running" in app.report()


def test_offered_features_follow_the_configuration(tmp_path):
    app = make_app(tmp_path, mrg_rxbuf=False)
    assert not app.device.offered >> Feature.NET_MRG_RXBUF & 1
    assert app.device.offered >> Feature.VERSION_1 & 1
    app.stop()
    with pytest.raises(ConfigError, match="features: cannot offer NET_CSUM"):
        make_app(tmp_path, features=feature_mask(Feature.NET_CSUM))
    for qsize in (0, 32769):  # any size up to 32768 caps (packed rings take 100)
        with pytest.raises(ConfigError, match=f"qsize: {qsize} is not in 1..32768"):
            make_app(tmp_path, qsize=qsize)


def test_packets_from_the_guest_reach_output(pair):
    app, fe = pair
    fe.connect()
    for i in range(5):
        fe.rings[1].post_tx(bytes([i]) * 60)
    app.pull()
    out = app.output["output"]
    got = []
    for p in out.receive_batch():
        got.append(packet.to_bytes(p))
        packet.free(p)
    assert got == [bytes([i]) * 60 for i in range(5)]
    assert app.stats["txq_packets"] == 5 and app.stats["txq_bytes"] == 300
    assert len(fe.rings[1].take_used()) == 5
    assert os.eventfd_read(fe.calls[1]) == 1  # the guest asked for interrupts


def test_packets_on_input_reach_the_guest_merged_when_large(pair):
    app, fe = pair
    fe.connect()
    posted = [fe.rings[0].post_rx(4096) for _ in range(4)]
    frame = bytes(i % 256 for i in range(9000))
    app.input["input"].transmit(packet.from_bytes(frame))
    app.push()
    used = fe.rings[0].take_used()
    assert [length for _, length in used] == [4096, 4096, 9012 - 8192]
    data = b"".join(fe.mem.read(buf, 4096) for _, buf in posted[:3])
    assert struct.unpack_from("<H", data, 10)[0] == 3 and data[12:9012] == frame
    assert app.stats["rxq_packets"] == 1 and app.stats["rxq_bytes"] == 9000


def test_input_is_dropped_and_counted_while_the_guest_rx_ring_is_down(pair):
    app, fe = pair
    for _ in range(3):
        app.input["input"].transmit(packet.from_bytes(b"x" * 60))
    app.push()
    assert app.stats["rxq_drop_not_ready"] == 3 and app.input["input"].empty()


def test_a_disabled_tx_ring_is_consumed_and_discarded(pair):
    app, fe = pair
    fe.connect()
    fe.request(R.SET_VRING_ENABLE, VringState(1, 0))
    fe.rings[1].post_tx(b"y" * 60)
    app.pull()
    assert app.output["output"].empty() and app.stats["txq_discarded"] == 1


def test_get_vring_base_stops_the_ring_and_tells_where_to_resume(pair):
    app, fe = pair
    fe.connect()
    for _ in range(3):
        fe.rings[1].post_tx(b"z" * 60)
    app.pull()
    reply = fe.request(R.GET_VRING_BASE, VringState(1, 0))
    assert reply.payload == VringState(1, 3)
    assert not app.device.tx.started
    fe.rings[1].post_tx(b"z" * 60)
    app.pull()
    assert app.stats["txq_packets"] == 3
    fe.setup_ring(1, base=3)
    app.pull()
    assert app.stats["txq_packets"] == 4


def test_a_new_memory_table_moves_running_rings_to_it(pair):
    app, fe = pair
    fe.connect()
    old = app.device.memory
    fe.request(R.SET_MEM_TABLE, fe.memory_table(), tuple(fe.mem.fds), need_reply=True)
    assert app.device.memory is not old and app.device.tx.running
    fe.rings[1].post_tx(b"m" * 60)
    app.pull()
    assert app.stats["txq_packets"] == 1


def test_ring_addresses_outside_the_memory_table_are_refused_with_a_nack(pair):
    app, fe = pair
    fe.negotiate()
    fe.request(R.SET_MEM_TABLE, fe.memory_table(), tuple(fe.mem.fds), need_reply=True)
    fe.request(R.SET_VRING_NUM, VringState(1, 256))
    fe.request(R.SET_VRING_ADDR, VringAddr(1, 0, 0x1000, 0x2000, 0x3000))
    kick = os.eventfd(0)
    reply = fe.request(R.SET_VRING_KICK, VringFile(1), (kick,), need_reply=True)
    os.close(kick)
    assert reply.payload != 0
    assert app.stats["protocol_errors"] == 1 and not app.device.tx.started
    assert "descriptor table is not in guest memory" in app.last_error
    assert app.channel is not None


def test_a_memory_table_with_a_short_file_is_refused(pair):
    app, fe = pair
    fe.negotiate()
    big = MemoryTable((MemoryRegion(0x100000, 64 << 20, 0x7F0000100000, 0),))
    reply = fe.request(R.SET_MEM_TABLE, big, tuple(fe.mem.fds), need_reply=True)
    assert reply.payload != 0
    assert "file has" in app.last_error and app.device.memory is None
    assert app.channel is not None  # a nack, not a disconnect


def test_bad_requests_without_reply_ack_end_the_connection(pair):
    app, fe = pair
    fe.request(R.SET_VRING_NUM, VringState(1, 100))  # not a power of two
    assert app.channel is None
    assert app.stats["disconnects"] == 1 and "queue size 100" in app.last_error


def test_undecodable_bytes_end_the_connection(pair):
    app, fe = pair
    fe.sock.send(struct.pack("=III", 9999, 1, 0))
    app.tick()
    assert app.channel is None and "unknown request code" in app.last_error


def test_disconnect_unmaps_memory_and_resets_the_rings(pair):
    app, fe = pair
    fe.connect()
    fe.rings[1].post_tx(b"a" * 60)
    fe.sock.close()
    app.tick()
    assert app.channel is None and app.device.memory is None
    assert not app.device.tx.started and app.device.features == 0
    assert app.stats["disconnects"] == 1
    app.pull()  # nothing happens on a ring that is gone
    assert app.stats["txq_packets"] == 0


def test_a_memory_table_that_loses_the_rings_stops_them_and_says_so(pair):
    app, fe = pair
    fe.connect()
    moved = MemoryTable(tuple(MemoryRegion(r.guest_phys_addr, r.memory_size,
                                           r.userspace_addr + (1 << 40), r.mmap_offset)
                              for r in fe.memory_table().regions))
    reply = fe.request(R.SET_MEM_TABLE, moved, tuple(fe.mem.fds), need_reply=True)
    assert reply.payload != 0
    assert not app.device.rx.started and not app.device.tx.started
    assert "ring 0" in app.last_error and "ring 1" in app.last_error
    assert app.device.memory.regions == moved.regions  # the old mapping is gone


def test_a_socket_path_in_use_by_a_live_server_is_refused(tmp_path):
    first = make_app(tmp_path)
    with pytest.raises(ConfigError, match="another process is listening"):
        make_app(tmp_path)
    first.stop()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "vhost.sock"))
    stale.close()  # leaves the file behind, like a crashed process
    make_app(tmp_path).stop()


def test_the_example_graphs_load():
    root = Path(__file__).parent.parent / "configs"
    for name in ("vhost.yaml", "vhost-echo.yaml"):
        c = config.load_yaml(root / name)
        assert c.apps["vhost"].cls is VhostUser


def test_selftest_passes(capsys):
    from snabbpy.apps import vhost

    vhost.selftest()
    assert "vhost selftest: ok" in capsys.readouterr().out
