"""VhostUser with several queue pairs, driven by a scripted frontend over a
socketpair (no DPDK, no VM): GET_QUEUE_NUM, rings beyond 0/1, SET_VRING_ENABLE
per ring, a ring index out of range refused and counted, per-queue
counters, and the control queue with good and hostile commands, each on
split and on packed rings (the frontend's ``mq`` fixture has both)."""

import os
import socket
import struct

import pytest
import yaml

from snabbpy.apps.vhost import VhostQueue, VhostUser
from snabbpy.core import config, packet
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine
from snabbpy.core.link import Link
from snabbpy.lib.vhost_user import ProtocolFeature, Request, VringState
from snabbpy.lib.virtio import DescFlag, Feature, feature_mask
from snabbpy.lib.virtio.net_ctrl import ERR, OK, CtrlClass, encode, vq_pairs_set
from snabbpy.testing.fake_frontend import WANTED, FakeFrontend

R = Request
MQ_WANTED = WANTED | feature_mask(Feature.NET_MQ, Feature.NET_CTRL_VQ)
FRAME = bytes(range(60))


def make_app(tmp_path, queues=2, links=True, **conf):
    conf = config.validate("vhost", VhostUser, {"socket_path": str(tmp_path / "v.sock"),
                                                "queues": queues, **conf})
    app = VhostUser(conf)
    if links:
        app.input = {p: Link(p) for p in ("input", "input1")[:queues]}
        app.output = {p: Link(p) for p in ("output", "output1")[:queues]}
    app.link()
    return app


@pytest.fixture(params=["split", "packed"])
def mq(tmp_path, request):
    """A 2-pair VhostUser and a FakeFrontend with 5 rings (2 pairs and the
    control queue), split or packed, joined by a socketpair; no packet left
    at the end."""
    before = packet.in_use()
    app = make_app(tmp_path)
    ours, theirs = socket.socketpair()
    app.attach(ours)
    fe = FakeFrontend(theirs, app.tick, rings=5, packed=request.param == "packed")
    yield app, fe
    for link in (*app.input.values(), *app.output.values()):
        while not link.empty():
            packet.free(link.receive())
    app.stop()
    fe.close()
    assert packet.in_use() == before


def connect(fe, rings=4, wanted=MQ_WANTED):
    fe.negotiate(wanted)
    fe.request(R.SET_MEM_TABLE, fe.memory_table(), tuple(fe.mem.fds), need_reply=True)
    for index in range(rings):
        fe.setup_ring(index)


def test_every_ring_is_of_the_kind_the_frontend_asked_for(mq):
    app, fe = mq
    connect(fe, rings=5)
    assert app.device.offered >> Feature.RING_PACKED & 1  # with MQ: both offered
    assert [v.packed for v in app.device.vrings] == [fe.packed] * 5
    assert app.device.ctrl.vring.started


def test_queue_num_and_features_follow_queues(tmp_path):
    for queues, mq in ((1, False), (2, True)):
        app = make_app(tmp_path, queues=queues)
        ours, theirs = socket.socketpair()
        app.attach(ours)
        fe = FakeFrontend(theirs, app.tick)
        offered = fe.request(R.GET_FEATURES).payload
        protocol = fe.request(R.GET_PROTOCOL_FEATURES).payload
        assert protocol >> ProtocolFeature.MQ & 1
        assert fe.request(R.GET_QUEUE_NUM).payload == queues
        assert bool(offered >> Feature.NET_MQ & 1) == mq
        assert bool(offered >> Feature.NET_CTRL_VQ & 1) == mq
        app.stop()
        fe.close()


def test_packets_flow_on_both_pairs_and_are_counted_per_queue(mq):
    app, fe = mq
    connect(fe)
    for k, count in ((0, 3), (1, 5)):
        for _ in range(count):
            fe.rings[2 * k + 1].post_tx(FRAME)
    app.pull()
    assert app.output["output"].nreadable() == 3
    assert app.output["output1"].nreadable() == 5
    for k, n in ((0, 2), (1, 4)):
        for _ in range(n):
            fe.rings[2 * k].post_rx(2048)
            app.input[("input", "input1")[k]].transmit(packet.from_bytes(FRAME))
    app.push()
    s = app.stats.snapshot()
    assert (s["txq_packets"], s["txq1_packets"], s["rxq_packets"], s["rxq1_packets"]) == \
        (3, 5, 2, 4)
    assert s["txq1_bytes"] == 5 * len(FRAME)
    assert "pair 1 tx (from guest): running" in app.report()


def test_set_vring_enable_acts_per_ring(mq):
    app, fe = mq
    connect(fe)
    fe.request(R.SET_VRING_ENABLE, VringState(3, 0), need_reply=True)
    fe.rings[1].post_tx(FRAME)
    fe.rings[3].post_tx(FRAME)
    app.pull()
    assert app.output["output"].nreadable() == 1 and app.output["output1"].empty()
    assert app.stats["txq1_discarded"] == 1  # consumed, as the spec says for a disabled ring
    fe.request(R.SET_VRING_ENABLE, VringState(2, 0), need_reply=True)
    app.input["input1"].transmit(packet.from_bytes(FRAME))
    app.push()
    assert app.stats["rxq1_drop_not_ready"] == 1
    reply = fe.request(R.SET_VRING_ENABLE, VringState(2, 2), need_reply=True)
    assert reply.payload != 0 and app.stats["protocol_errors"] == 1


@pytest.mark.parametrize("queues, bad", [(1, 2), (2, 5), (2, 255)])
def test_a_ring_index_out_of_range_is_refused_and_counted(tmp_path, queues, bad):
    app = make_app(tmp_path, queues=queues)
    ours, theirs = socket.socketpair()
    app.attach(ours)
    fe = FakeFrontend(theirs, app.tick)
    fe.negotiate(MQ_WANTED)
    assert fe.request(R.SET_VRING_NUM, VringState(bad, 256), need_reply=True).payload != 0
    kick = os.eventfd(0)
    from snabbpy.lib.vhost_user import VringFile
    fe.request(R.SET_VRING_KICK, VringFile(bad), (kick,), need_reply=True)
    os.close(kick)
    assert app.stats["bad_ring_index"] == 2 and app.stats["protocol_errors"] == 2
    assert app.channel is not None  # refused with a nack, the connection kept
    assert f"ring index {bad} out of range" in app.last_error
    app.stop()
    fe.close()


# -- the control queue (ring 4 of a 2-pair device) ------------------------


def send_command(fe, data: bytes | None, chain=None) -> tuple[int, int, int]:
    """Puts a command on the control ring (``chain`` overrides the usual
    readable + 1-byte writable layout); returns (used len, ack, ack addr)."""
    ring, mem = fe.rings[4], fe.mem
    ack = mem.alloc(1)
    mem.write(ack, b"\xee")
    if chain is None:
        buf = mem.alloc(len(data))
        mem.write(buf, data)
        chain = [(buf, len(data), 0), (ack, 1, DescFlag.WRITE)]
    ring.add_chain(chain)
    fe.pump()
    ((_, used_len),) = ring.take_used()
    return used_len, mem.read(ack, 1)[0], ack


def test_vq_pairs_set_enables_the_second_receive_queue(mq):
    app, fe = mq
    connect(fe, rings=5)
    fe.rings[2].post_rx(2048)
    app.input["input1"].transmit(packet.from_bytes(FRAME))
    app.push()  # the control queue runs: one pair until the driver says more
    assert app.stats["rxq1_drop_not_ready"] == 1 and app.stats["rxq1_packets"] == 0
    assert send_command(fe, vq_pairs_set(2))[:2] == (1, OK)
    app.input["input1"].transmit(packet.from_bytes(FRAME))
    app.push()
    assert app.stats["rxq1_packets"] == 1
    assert (app.stats["ctrl_commands"], app.stats["ctrl_pairs_set"]) == (1, 1)
    assert "pairs in use 2 of 2" in app.report()
    assert send_command(fe, vq_pairs_set(1))[:2] == (1, OK)
    assert app.device.ctrl.pairs == 1


@pytest.mark.parametrize("command, why", [
    (b"\x04", "1 bytes"),                                     # short: no command byte
    (encode(CtrlClass.RX, 0, b"\x01"), "not supported"),      # a class we do not do
    (encode(CtrlClass.MQ, 1, bytes(8)), "not supported"),     # RSS_CONFIG
    (encode(CtrlClass.MQ, 0, struct.pack("<H", 0)), "0 pairs"),
    (encode(CtrlClass.MQ, 0, struct.pack("<H", 3)), "3 pairs"),
    (encode(CtrlClass.MQ, 0, b"\x02"), "1 data bytes"),
    (encode(CtrlClass.MQ, 0, bytes(200)), "data bytes"),     # longer than kept
])
def test_bad_commands_are_answered_err_and_counted(mq, command, why):
    app, fe = mq
    connect(fe, rings=5)
    assert send_command(fe, command)[:2] == (1, ERR)
    assert (app.stats["ctrl_commands"], app.stats["ctrl_errors"]) == (1, 1)
    assert why in app.device.ctrl.last_error
    assert app.device.ctrl.pairs == 1


def test_vq_pairs_set_without_mq_negotiated_is_err(mq):
    app, fe = mq
    connect(fe, rings=5, wanted=MQ_WANTED & ~(1 << Feature.NET_MQ))
    assert send_command(fe, vq_pairs_set(2))[:2] == (1, ERR)
    assert "not negotiated" in app.device.ctrl.last_error


def test_malformed_control_chains_are_returned_unread(mq):
    app, fe = mq
    connect(fe, rings=5)
    mem = fe.mem
    buf = mem.alloc(4)
    mem.write(buf, vq_pairs_set(2))
    ack = mem.alloc(1)
    chains = [
        [(buf, 4, 0)],                                             # no ack byte
        [(ack, 1, DescFlag.WRITE), (buf, 4, 0)],                   # readable after it
        [(buf, 4, 0), (0xDEAD_0000_0000, 1, DescFlag.WRITE)],      # ack outside memory
        [(0xDEAD_0000_0000, 4, 0), (ack, 1, DescFlag.WRITE)],      # command outside
    ]
    for chain in chains:
        used_len, _, _ = send_command(fe, None, chain)
        assert used_len == 0
    assert app.stats["ctrl_bad_chains"] == 4 and app.stats["ctrl_commands"] == 0
    assert app.device.ctrl.pairs == 1
    assert send_command(fe, vq_pairs_set(2))[:2] == (1, OK)  # and the queue still works


def indirect_table(fe, entries) -> tuple[int, int]:
    """An indirect table of (address, length, flags) entries laid out for
    ``fe``'s rings; (its address, its length)."""
    packed = [struct.pack("<QIHH", a, n, 0, f) for a, n, f in entries]
    split = [struct.pack("<QIHH", a, n, f | DescFlag.NEXT * (i + 1 < len(entries)), i + 1)
             for i, (a, n, f) in enumerate(entries)]
    table = b"".join(packed if fe.packed else split)
    at = fe.mem.alloc(len(table))
    fe.mem.write(at, table)
    return at, len(table)


def test_a_command_in_an_indirect_table_is_answered(mq):
    app, fe = mq
    connect(fe, rings=5)
    buf, ack = fe.mem.alloc(4), fe.mem.alloc(1)
    fe.mem.write(buf, vq_pairs_set(2))
    table, size = indirect_table(fe, [(buf, 4, 0), (ack, 1, DescFlag.WRITE)])
    used_len, _, _ = send_command(fe, None, [(table, size, DescFlag.INDIRECT)])
    assert (used_len, fe.mem.read(ack, 1)[0]) == (1, OK)
    assert app.device.ctrl.pairs == 2


@pytest.mark.parametrize("hostile, reason", [
    ("indirect inside indirect", "bad_indirect"),
    ("indirect table of 15 bytes", "bad_indirect"),
    ("indirect with NEXT after it", "bad_indirect"),
    ("zero-length ack buffer", "bad_direction"),
    ("readable buffers of 8 GiB in all", "too_long"),
    ("ack outside memory", "bad_addr"),
])
def test_hostile_control_chains_are_counted_by_reason(mq, hostile, reason):
    app, fe = mq
    connect(fe, rings=5)
    buf, ack = fe.mem.alloc(4), fe.mem.alloc(1)
    fe.mem.write(buf, vq_pairs_set(2))
    inner, size = indirect_table(fe, [(buf, 4, 0), (ack, 1, DescFlag.WRITE)])
    chain = {
        "indirect inside indirect": [(indirect_table(fe, [(inner, size, DescFlag.INDIRECT)])[0],
                                      16, DescFlag.INDIRECT)],
        "indirect table of 15 bytes": [(inner, 15, DescFlag.INDIRECT)],
        "indirect with NEXT after it": [(inner, size, DescFlag.INDIRECT),
                                        (ack, 1, DescFlag.WRITE)],
        "zero-length ack buffer": [(buf, 4, 0), (ack, 0, DescFlag.WRITE)],
        "readable buffers of 8 GiB in all": [(buf, 0xFFFF_FFFF, 0), (buf, 0xFFFF_FFFF, 0),
                                             (ack, 1, DescFlag.WRITE)],
        "ack outside memory": [(buf, 4, 0), (0xDEAD_0000_0000, 1, DescFlag.WRITE)],
    }[hostile]
    assert send_command(fe, None, chain)[0] == 0
    assert app.stats["ctrl_bad_chains"] == 1 and app.stats["ctrl_commands"] == 0
    assert app.device.ctrl.vring.counters()[reason] == 1
    assert send_command(fe, vq_pairs_set(2))[:2] == (1, OK)  # the next command is read


def test_a_command_of_4_gib_is_answered_err_having_read_only_its_start(mq):
    app, fe = mq
    connect(fe, rings=5)
    buf, ack = fe.mem.alloc(64), fe.mem.alloc(1)
    fe.mem.write(buf, vq_pairs_set(2))
    assert send_command(fe, None, [(buf, 0xFFFF_FFFF, 0), (ack, 1, DescFlag.WRITE)])[0] == 1
    assert fe.mem.read(ack, 1)[0] == ERR
    assert "4294967293 data bytes, 2 expected" in app.device.ctrl.last_error


def test_a_packed_chain_into_a_slot_not_given_is_returned_and_the_ring_goes_on(tmp_path):
    """Packed rings: NEXT on the last descriptor leads to a slot the driver
    has not made available; the device takes the chain as far as it goes,
    hands it back with length 0, and reads the next command after it."""
    app = make_app(tmp_path)
    ours, theirs = socket.socketpair()
    app.attach(ours)
    fe = FakeFrontend(theirs, app.tick, rings=5, qsize=8, packed=True)
    try:
        connect(fe, rings=5)
        ring, buf = fe.rings[4], fe.mem.alloc(4)
        fe.mem.write(buf, vq_pairs_set(2))
        ring.add_chain([(buf, 4, 0), (buf, 4, DescFlag.NEXT)])
        fe.pump()
        assert ring.take_used() == [(0, 0)]
        assert app.device.ctrl.vring.counters()["bad_chain"] == 1
        for _ in range(10):  # 22 slots of 8: both wrap counters flip twice
            assert send_command(fe, vq_pairs_set(2))[:2] == (1, OK)
        assert app.stats["ctrl_pairs_set"] == 10 and app.stats["ctrl_bad_chains"] == 1
    finally:
        app.stop()
        fe.close()


def test_queues_and_ports_are_checked_at_load(tmp_path):
    for bad in (0, 9, True):
        with pytest.raises(ConfigError, match="queues"):
            config.validate("vhost", VhostUser, {"socket_path": "x", "queues": bad})
    app = make_app(tmp_path, queues=2, links=False)
    app.input = {"input3": Link("in")}
    with pytest.raises(ConfigError, match="'input3' is queue pair 3, but this app serves "
                                          "pairs 0, 1"):
        app.link()
    app.stop()
    with pytest.raises(ConfigError, match="cannot offer NET_MQ"):
        make_app(tmp_path, queues=1, features=feature_mask(Feature.VERSION_1, Feature.NET_MQ))


# -- one app per queue pair: VhostQueue ------------------------------------

PER_PAIR = """
apps:
  vhost:   {class: vhost.VhostUser, config: {socket_path: %s, queues: 2, serve: [0]}}
  vhostq1: {class: vhost.VhostQueue, config: {socket_path: %s, queue: 1}}
  sink0:   {class: basic.Sink}
  sink1:   {class: basic.Sink}
links:
  - vhost.output -> sink0.input
  - vhostq1.output -> sink1.input
"""


def test_a_vhost_queue_serves_the_pair_the_owner_lends_it(tmp_path):
    sock = str(tmp_path / "v.sock")
    engine = Engine()
    engine.configure(config.from_dict(yaml.safe_load(PER_PAIR % (sock, sock))))
    owner, q1 = engine.apps["vhost"], engine.apps["vhostq1"]
    ours, theirs = socket.socketpair()
    owner.attach(ours)
    fe = FakeFrontend(theirs, owner.tick, rings=5)
    try:
        connect(fe)
        for ring, n in ((1, 2), (3, 7)):
            for _ in range(n):
                fe.rings[ring].post_tx(FRAME)
        engine.breathe()
        assert owner.stats["txq_packets"] == 2 and owner.stats["txq1_packets"] == 0
        assert q1.stats["txq_packets"] == 7  # pair 1 counts in its own app
        assert engine.links["vhostq1.output -> sink1.input"].stats()["rxpackets"] == 7
        assert "pair 1: served by vhostq1" in owner.report()
        assert "queue pair 1 of vhost" in q1.report()
        fe.request(R.SET_VRING_ENABLE, VringState(2, 0), need_reply=True)
        q1.input = {"input": Link("input")}
        q1.link()
        q1.input["input"].transmit(packet.from_bytes(FRAME))
        q1.push()  # the guest's receive ring is off: freed, counted in q1's own names
        assert q1.stats["rxq_drop_not_ready"] == 1
    finally:
        engine.stop()
        fe.close()


def test_who_serves_a_pair_is_checked(tmp_path):
    sock = str(tmp_path / "v.sock")
    with pytest.raises(ConfigError, match=r"serve: \[2\] must list queue pairs 0 to 1"):
        make_app(tmp_path, serve=[2])
    owner = make_app(tmp_path, links=False, serve=[0])
    owner.name = "vhost"

    def queue_app(k, path=sock):
        app = VhostQueue(config.validate("q", VhostQueue, {"socket_path": path, "queue": k}))
        app.name = f"q{k}"
        return app

    first = queue_app(1)
    first.link()
    with pytest.raises(ConfigError, match="pair 1 of vhost is served by q1 already"):
        queue_app(1).link()
    with pytest.raises(ConfigError, match="vhost serves pair 0 itself"):
        queue_app(0).link()
    with pytest.raises(ConfigError, match="queue: 2 is not a queue pair of vhost"):
        queue_app(2).link()
    elsewhere = queue_app(1, str(tmp_path / "other.sock"))
    elsewhere.link()  # no owner here: it will look for one in another process
    assert "waiting for its owner in another process" in elsewhere.report()
    elsewhere.stop()
    first.stop()
    assert owner.lent == {}
    owner.stop()


def test_the_engine_gives_counters_for_the_queues_configured(tmp_path):
    engine = Engine()
    c = config.new()
    config.app(c, "one", VhostUser, {"socket_path": str(tmp_path / "1.sock")})
    config.app(c, "two", VhostUser, {"socket_path": str(tmp_path / "2.sock"), "queues": 2})
    engine.configure(c)
    try:
        one, two = (set(engine.counters()["apps"][n]) for n in ("one", "two"))
    finally:
        engine.stop()
    assert {"rxq_packets", "txq_packets", "bad_ring_index"} <= one
    assert not {n for n in one if n.startswith(("rxq1", "ctrl_"))}
    assert {"rxq1_packets", "txq1_discarded", "rxq1_drop_not_ready", "ctrl_errors"} <= two
    assert not {n for n in two if n.startswith(("rxq2", "txq2"))}
