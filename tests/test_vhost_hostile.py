"""A hostile frontend: random sequences of well-formed requests with
random values (memory tables pointing anywhere, rings outside memory, odd
sizes and indices, ring memory overwritten with garbage between breaths).
The app must answer or disconnect, never crash, and leak no packet and no
file descriptor."""

import gc
import os
import socket

from hypothesis import event, given, settings
from hypothesis import strategies as st

from snabbpy.apps.vhost import VhostUser
from snabbpy.core import config, packet
from snabbpy.core.link import Link
from snabbpy.lib.vhost_user import (
    MemoryRegion,
    MemoryTable,
    Request,
    VhostUserProtocolError,
    VringAddr,
    VringFile,
    VringState,
)
from snabbpy.testing.fake_frontend import FakeFrontend
from snabbpy.testing.fake_guest import USER_OFFSET

R = Request
MEM = 1 << 20
GPA = 0x100000

u64 = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, GPA, GPA + MEM, MEM]))
ring_index = st.one_of(st.integers(0, 1), st.integers(0, 255))
region = st.builds(MemoryRegion,
                   guest_phys_addr=st.one_of(st.just(GPA), u64),
                   memory_size=st.one_of(st.just(MEM), st.integers(1, 2 * MEM)),
                   userspace_addr=st.one_of(st.just(GPA + USER_OFFSET), u64),
                   mmap_offset=st.one_of(st.just(0), st.integers(0, 2 * MEM)))
user_addr = st.one_of(st.integers(GPA + USER_OFFSET, GPA + USER_OFFSET + MEM), u64)

ops = st.one_of(
    st.tuples(st.just(R.SET_FEATURES), u64),
    st.tuples(st.just(R.SET_MEM_TABLE), st.lists(region, min_size=0, max_size=3)),
    st.tuples(st.just(R.SET_VRING_NUM), st.builds(VringState, ring_index,
                                                   st.sampled_from([0, 1, 3, 64, 256, 65536]))),
    st.tuples(st.just(R.SET_VRING_ADDR), st.builds(VringAddr, ring_index, st.just(0),
                                                    user_addr, user_addr, user_addr)),
    st.tuples(st.just(R.SET_VRING_BASE), st.builds(VringState, ring_index,
                                                    st.integers(0, 2**32 - 1))),
    st.tuples(st.just(R.GET_VRING_BASE), st.builds(VringState, ring_index, st.just(0))),
    st.tuples(st.just(R.SET_VRING_KICK), ring_index),
    st.tuples(st.just(R.SET_VRING_CALL), ring_index),
    st.tuples(st.just(R.SET_VRING_ENABLE), st.builds(VringState, ring_index,
                                                      st.integers(0, 2))),
    st.tuples(st.just("garbage"), st.integers(0, MEM - 64), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("traffic"), st.integers(1, 20)),
    st.tuples(st.just("traffic"), st.integers(1, 20)),  # twice: more likely
    st.tuples(st.just("good memory table"), st.just(None)),
    st.tuples(st.just("good ring"), st.integers(0, 1)),
)


def open_fds():
    """This process's open fds and what they are."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # the fd of the listing itself
    return out


def send(fe, op, arg, ack):
    if op == R.SET_MEM_TABLE:
        fe.request(op, MemoryTable(tuple(arg)), tuple(fe.mem.fds[:1]) * len(arg),
                   need_reply=True)
    elif op in (R.SET_VRING_KICK, R.SET_VRING_CALL):
        fd = os.eventfd(0, os.EFD_NONBLOCK)
        try:
            fe.request(op, VringFile(arg), (fd,), need_reply=ack)
        finally:
            os.close(fd)
    else:
        fe.request(op, arg, need_reply=ack and op != R.GET_VRING_BASE)


def play(app, fe, op, arg, ack):
    if op == "garbage":
        fe.mem.write(GPA + arg[0], arg[1])
    elif op == "good memory table":
        fe.request(R.SET_MEM_TABLE, fe.memory_table(), tuple(fe.mem.fds), need_reply=True)
    elif op == "good ring":
        fe.setup_ring(arg)
    elif op == "traffic":
        event(f"traffic with rings running: rx {app.device.rx.running}, tx {app.device.tx.running}")
        for _ in range(arg):
            fe.rings[0].post_rx(256)
            fe.rings[1].post_tx(b"\x66" * 60)
            app.input["input"].transmit(packet.from_bytes(b"\x55" * 100))
        app.pull()
        app.push()
        app.output["output"].drain()
    else:
        send(fe, op, arg, ack)


@settings(max_examples=300, deadline=None)
@given(script=st.lists(ops, min_size=1, max_size=25), set_up=st.booleans(), ack=st.booleans())
def test_random_requests_never_break_the_app(tmp_path_factory, script, set_up, ack):
    """``set_up``: start from a working connection; ``ack``: ask for a
    REPLY_ACK, so that refused requests are answered rather than fatal."""
    packet.free(packet.allocate())
    before, fds = packet.in_use(), open_fds()
    conf = {"socket_path": str(tmp_path_factory.mktemp("h") / "s")}
    app = VhostUser(config.validate("vhost", VhostUser, conf))
    app.input, app.output = {"input": Link("in")}, {"output": Link("out")}
    app.link()
    ours, theirs = socket.socketpair()
    app.attach(ours)
    fe = FakeFrontend(theirs, app.tick, memory_size=MEM)
    fe.connect() if set_up else fe.negotiate()
    for op, *arg in script:
        try:
            play(app, fe, op, arg if op == "garbage" else arg[0], ack)
        except VhostUserProtocolError:
            continue  # the codec will not even encode it (and would not decode it)
        except (ConnectionError, BrokenPipeError, TimeoutError):
            break
        if app.channel is None:
            event("disconnected by the app")
            break
    assert app.stats["connects"] == 1
    app.stop()
    fe.close()
    del fe
    app.input["input"].drain()
    app.output["output"].drain()
    assert packet.in_use() == before
    leaked = open_fds().keys() - fds.keys()
    if leaked:  # perhaps only garbage not yet collected
        gc.collect()
        leaked = {fd: path for fd, path in open_fds().items() if fd not in fds}
    assert not leaked
