"""VhostUser keeps serving across disconnects: a new frontend in server
mode, a reconnect in client mode; rings restart clean, nothing leaks."""

import os
import socket
import time

from snabbpy.apps.vhost import VhostUser
from snabbpy.core import config, packet
from snabbpy.core.link import Link
from snabbpy.testing.fake_frontend import FakeFrontend


def make_app(path, **conf):
    app = VhostUser(config.validate("vhost", VhostUser, {"socket_path": str(path), **conf}))
    app.input, app.output = {"input": Link("in")}, {"output": Link("out")}
    app.link()
    return app


def wait_for(app, condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, app.report()
        app.tick()
        time.sleep(0.001)


def exchange(app, fe, n):
    """n packets each way; returns what arrived on output and in the guest."""
    for i in range(n):
        fe.rings[1].post_tx(bytes([i]) * 64)
        fe.rings[0].post_rx(2048)
        app.input["input"].transmit(packet.from_bytes(bytes([i]) * 64))
    app.pull()
    app.push()
    out = app.output["output"]
    got = out.nreadable()
    out.drain()
    return got, len(fe.rings[0].take_used())


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_server_mode_serves_a_new_frontend_after_the_first_leaves(tmp_path):
    packet.free(packet.allocate())  # packet memory (a memfd) exists before we count
    before, fds = packet.in_use(), open_fds()
    path = tmp_path / "vhost.sock"
    app = make_app(path)
    for round_ in range(3):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(path))
        fe = FakeFrontend(sock, app.tick)
        wait_for(app, lambda: app.channel is not None)
        fe.connect()
        assert exchange(app, fe, 10) == (10, 10)
        fe.rings[1].post_tx(b"in flight" * 10)  # left behind by the frontend
        fe.close()
        wait_for(app, lambda: app.channel is None)
        assert app.device.memory is None and not app.device.rx.started
        assert app.stats["connects"] == round_ + 1 == app.stats["disconnects"]
    assert app.stats["txq_packets"] == 30 == app.stats["rxq_packets"]
    app.input["input"].transmit(packet.from_bytes(b"late" * 16))
    app.push()
    assert app.stats["rxq_drop_not_ready"] == 1
    app.stop()
    del fe  # its guest memory mapping holds an fd until it goes
    assert not path.exists()
    assert packet.in_use() == before
    assert open_fds() == fds  # memfds, eventfds, sockets: all closed


def test_client_mode_reconnects_when_the_server_comes_back(tmp_path):
    before = packet.in_use()
    path = tmp_path / "frontend.sock"
    app = make_app(path, is_server=False, reconnect_interval=0.001)
    for _ in range(10):
        app.tick()  # nobody listening yet: no harm done
    assert app.state == "connecting"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    for round_ in range(2):
        wait_for(app, lambda: app.channel is not None)
        conn, _ = server.accept()
        fe = FakeFrontend(conn, app.tick)
        fe.connect()
        assert exchange(app, fe, 5) == (5, 5)
        fe.close()
        wait_for(app, lambda: app.channel is None)
        assert app.stats["disconnects"] == round_ + 1
    assert app.stats["connects"] == 2 and app.stats["txq_packets"] == 10
    app.stop()
    server.close()
    assert packet.in_use() == before
