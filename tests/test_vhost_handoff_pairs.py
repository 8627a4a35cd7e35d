"""The queue handoff's two state machines with fakes (no worker process, no
handoff socket): a VhostUser that owns a 2-pair device driven by a scripted
frontend, and pair 1 served by a LentPair behind a fake link that passes
messages and fds as the socket would. The worker runs the rings from what
the owner sends; the owner answers GET_VRING_BASE, a new memory table and a
disconnect only after the worker stopped and handed the position back; a
dead worker is counted; messages out of order are refused. On split rings
and on packed ones, whose position is the 32-bit ring state with both wrap
counters."""

import os
import socket

import pytest

from snabbpy.apps.vhost import VhostUser
from snabbpy.apps.vhost.handoff import HandoffError, decode, encode
from snabbpy.apps.vhost.handoff_socket import PeerGone
from snabbpy.apps.vhost.handoff_worker import LentPair
from snabbpy.apps.vhost.queue_pair import pair_counters
from snabbpy.core import config, packet
from snabbpy.core.counter import Counters
from snabbpy.core.link import Link
from snabbpy.core.native import ffi
from snabbpy.lib.vhost_user import Request, VringState
from snabbpy.lib.virtio import Feature, feature_mask
from snabbpy.testing.fake_frontend import WANTED, FakeFrontend
from snabbpy.testing.fake_packed import PACKED_START, advance

R = Request
MQ_WANTED = WANTED | feature_mask(Feature.NET_MQ, Feature.NET_CTRL_VQ)
FRAME = bytes(range(60))


class FakeWorker:
    """The owner's link to a LentPair in this process: each message is
    encoded and decoded, its fds duplicated (as SCM_RIGHTS does), handled
    at once; answers wait to be received. ``dead``: as if the process died."""

    def __init__(self, lent: LentPair) -> None:
        self.lent, self.answers, self.ops, self.dead = lent, [], [], False

    def send(self, msg, fds=()):
        if self.dead:
            raise PeerGone("dead")
        copies = [os.dup(fd) for fd in fds]
        got = decode(encode(msg, fds), copies)
        got["fds"] = copies
        self.ops.append((got["op"], got.get("index")))
        try:
            answer = self.lent.handle(got)
        except HandoffError as e:
            answer = {"op": "error", "error": str(e)}
        if answer is not None:
            self.answers.append(answer)

    def receive(self, timeout=0.0):
        if self.dead:
            raise PeerGone("dead")
        return self.answers.pop(0) if self.answers else None

    def close(self):
        self.dead = True


def position(fe, taken: int) -> int:
    """Where a ring of ``fe`` stands after ``taken`` chains of one slot, as
    GET_VRING_BASE says it: an avail index, or a packed ring's state."""
    if not fe.packed:
        return taken
    pos = advance(PACKED_START & 0xFFFF, taken, fe.rings[0].size)
    return pos | pos << 16


@pytest.fixture(params=["split", "packed"])
def lent_pair(tmp_path, request):
    """(owner, frontend, worker's LentPair, fake link, the worker's out link)."""
    before = packet.in_use()
    conf = config.validate("vhost", VhostUser, {"socket_path": str(tmp_path / "v.sock"),
                                                "queues": 2, "serve": [0]})
    owner = VhostUser(conf)
    owner.name = "vhost"
    owner.input, owner.output = {"input": Link("input")}, {"output": Link("output")}
    owner.link()
    counters = Counters(pair_counters(0))
    lent = LentPair(1, counters)
    out = Link("out")
    lent.pair.link(ffi.NULL, out.c)
    link = FakeWorker(lent)
    owner.remote.adopt({"op": "hello", "pair": 1}, link)
    ours, theirs = socket.socketpair()
    owner.attach(ours)
    fe = FakeFrontend(theirs, owner.tick, rings=5, packed=request.param == "packed")
    fe.negotiate(MQ_WANTED)
    fe.request(R.SET_MEM_TABLE, fe.memory_table(), tuple(fe.mem.fds), need_reply=True)
    for index in range(4):
        fe.setup_ring(index)
    yield owner, fe, lent, link, out
    while not out.empty():
        packet.free(out.receive())
    owner.stop()
    lent.reset()
    fe.close()
    assert packet.in_use() == before


def test_the_worker_runs_the_pair_and_counts_its_packets(lent_pair):
    owner, fe, lent, link, out = lent_pair
    assert lent.pair.rx.running and lent.pair.tx.running
    assert [op for op, _ in link.ops[:2]] == ["active", "memory"]
    for _ in range(5):
        fe.rings[3].post_tx(FRAME)
    owner.pull()
    lent.pair.pull()
    assert out.nreadable() == 5
    assert lent.pair.counters["txq_packets"] == 5 and owner.stats["txq1_packets"] == 0
    assert "pair 1: served by another process, rings running: 2, 3" in owner.report()


def test_get_vring_base_answers_the_position_the_worker_hands_back(lent_pair):
    owner, fe, lent, link, out = lent_pair
    for _ in range(5):
        fe.rings[3].post_tx(FRAME)
    lent.pair.pull()
    reply = fe.request(R.GET_VRING_BASE, VringState(3, 0))
    assert reply.payload == VringState(3, position(fe, 5))  # the owner's own never moved
    assert ("stop", 3) in link.ops and not lent.pair.tx.started
    assert lent.pair.rx.running  # the other ring goes on


def test_a_new_memory_table_stops_moves_and_restarts_the_rings_where_they_were(lent_pair):
    owner, fe, lent, link, out = lent_pair
    for _ in range(3):
        fe.rings[3].post_tx(FRAME)
    lent.pair.pull()
    first = lent.memory
    del link.ops[:]
    fe.request(R.SET_MEM_TABLE, fe.memory_table(), tuple(fe.mem.fds), need_reply=True)
    ops = [op for op, _ in link.ops]
    assert ops[:2] == ["stop", "stop"] and ops[2] == "memory" and ops.count("ring") == 2
    assert lent.memory is not first and lent.pair.tx.running
    assert lent.pair.tx.q.last_avail == position(fe, 3) & 0xFFFF
    fe.rings[3].post_tx(FRAME)
    lent.pair.pull()
    assert lent.pair.counters["txq_packets"] == 4


def test_a_disconnect_resets_the_worker_after_taking_the_positions_back(lent_pair):
    owner, fe, lent, link, out = lent_pair
    fe.close()
    owner.tick()
    assert [op for op, _ in link.ops[-3:]] == ["stop", "stop", "reset"]
    assert lent.memory is None and not lent.pair.rx.started
    assert owner.stats["handoff_lost"] == owner.stats["handoff_errors"] == 0


def test_a_dead_worker_is_counted_and_the_owner_still_answers(lent_pair):
    owner, fe, lent, link, out = lent_pair
    link.dead = True
    owner.tick()
    assert owner.stats["handoff_lost"] == 1 and "worker closed" in owner.remote.last_error
    assert fe.request(R.GET_VRING_BASE, VringState(3, 0)).payload == VringState(
        3, position(fe, 0))
    assert owner.remote.remotes == {}


def test_a_worker_that_leaves_hands_its_positions_back_and_is_not_counted_lost(lent_pair):
    owner, fe, lent, link, out = lent_pair
    for _ in range(4):
        fe.rings[3].post_tx(FRAME)
    lent.pair.pull()
    link.answers.append(lent.leave())  # its VhostQueue stopped
    owner.tick()
    assert owner.remote.remotes == {} and owner.stats["handoff_lost"] == 0
    assert fe.request(R.GET_VRING_BASE, VringState(3, 0)).payload == VringState(
        3, position(fe, 4))


def test_a_position_the_ring_cannot_have_is_counted_and_not_taken(lent_pair):
    owner, fe, lent, link, out = lent_pair
    bad = 0x81008100 if fe.packed else 70000  # slot 256 of a 256-slot ring; 17 bits
    link.answers.append({"op": "bye", "rings": [[3, bad]]})
    owner.tick()
    assert owner.stats["handoff_errors"] == 1
    assert "stopped ring 3: " in owner.remote.last_error
    assert fe.request(R.GET_VRING_BASE, VringState(3, 0)).payload == VringState(
        3, position(fe, 0))


def test_a_second_server_for_a_pair_or_a_pair_not_lent_is_refused(lent_pair):
    owner, fe, lent, link, out = lent_pair
    other = FakeWorker(LentPair(1, Counters(pair_counters(0))))
    with pytest.raises(HandoffError, match="pair 1 is served by another app already"):
        owner.remote.adopt({"op": "hello", "pair": 1}, other)
    with pytest.raises(HandoffError, match=r"pair 0 cannot be lent \(lendable: 1\)"):
        owner.remote.adopt({"op": "hello", "pair": 0}, other)
    with pytest.raises(HandoffError, match="must first say hello"):
        owner.remote.adopt({"op": "stop", "index": 2}, other)


def test_an_answer_out_of_order_is_counted(lent_pair):
    owner, fe, lent, link, out = lent_pair
    link.answers.append({"op": "stopped", "index": 2, "base": 9})
    owner.tick()
    assert owner.stats["handoff_errors"] == 1
    assert "stopped out of order" in owner.remote.last_error


# -- the worker's side alone ---------------------------------------------


def memfd(size=1 << 16):
    fd = os.memfd_create("guest")
    os.ftruncate(fd, size)
    return fd


MEMORY = {"op": "memory", "regions": [[0, 1 << 16, 1 << 40, 0]]}
RING = {"op": "ring", "index": 2, "num": 256, "desc": (1 << 40), "avail": (1 << 40) + 4096,
        "used": (1 << 40) + 8192, "base": 0, "features": 1 << Feature.VERSION_1,
        "enabled": True, "kick": False, "call": False}


@pytest.mark.parametrize("steps, error", [
    ([RING], "ring 2: no memory yet"),
    ([MEMORY, {**RING, "index": 4}], "ring 4 is not one of pair 1 .rings 2 and 3."),
    ([MEMORY, RING, RING], "ring 2: already runs"),
    ([MEMORY, RING, MEMORY], "memory: ring 2 still runs"),
    ([MEMORY, {"op": "stop", "index": 3}], "stop: ring 3 is not running"),
    ([MEMORY, {**RING, "base": 70000}], "base 70000 is not a 16-bit index"),
    ([MEMORY, {**RING, "desc": 1 << 50}], "descriptor table is not in guest memory"),
    ([{"op": "hello", "pair": 1}], "hello: not a message for a worker"),
])
def test_the_worker_refuses_messages_out_of_order(steps, error):
    lent = LentPair(1, Counters(pair_counters(0)))
    try:
        *before, last = steps
        for step in before:
            lent.handle({**step, "fds": [memfd()] if step["op"] == "memory" else []})
        fds = [memfd()] if last["op"] == "memory" else []
        with pytest.raises(HandoffError, match=error):
            lent.handle({**last, "fds": fds})
        for fd in fds:
            with pytest.raises(OSError):
                os.fstat(fd)  # closed by the refusal
    finally:
        lent.reset()


def test_the_worker_hands_back_its_position_on_stop():
    lent = LentPair(1, Counters(pair_counters(0)))
    lent.handle({**MEMORY, "fds": [memfd()]})
    lent.handle({**RING, "base": 42, "fds": []})
    assert lent.handle({"op": "stop", "index": 2, "fds": []}) == \
        {"op": "stopped", "index": 2, "base": 42}
    assert lent.handle({"op": "reset", "fds": []}) == {"op": "reset_done"}
    assert lent.memory is None


def test_packets_for_a_pair_not_running_are_freed_and_counted_by_the_worker():
    lent = LentPair(1, Counters(pair_counters(0)))
    into = Link("into")
    lent.pair.link(into.c, ffi.NULL)
    into.transmit(packet.from_bytes(FRAME))
    lent.pair.push(lent.active)
    assert lent.pair.counters["rxq_drop_not_ready"] == 1 and into.empty()
