"""Both socket ends of vhost-user (lib/vhost_user/sockets.py): the
stale-socket rule, listening, and connecting again while no server is there."""

import os
import socket

import pytest

from snabbpy.lib.vhost_user.sockets import Connector, Listener, SocketPathError, remove_stale_socket


def dead_server_socket(path) -> None:
    """Leaves a socket file at ``path`` with nobody listening on it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()


def test_a_stale_socket_is_removed_and_replaced(tmp_path):
    path = tmp_path / "s"
    dead_server_socket(path)
    listener = Listener(str(path))
    try:
        client = Connector(str(path)).poll()
        assert client is not None and listener.poll() is not None
        client.close()
    finally:
        listener.close()
    assert not path.exists()


def test_a_live_server_is_never_replaced(tmp_path):
    path = str(tmp_path / "s")
    live = Listener(path)
    try:
        with pytest.raises(SocketPathError, match="another process is listening"):
            Listener(path)
    finally:
        live.close()


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_what_is_not_a_socket_is_never_removed(tmp_path, kind):
    path = tmp_path / "s"
    if kind == "file":
        path.write_text("precious")
    else:
        dead_server_socket(tmp_path / "target")
        os.symlink(tmp_path / "target", path)
    with pytest.raises(SocketPathError, match="not a socket"):
        remove_stale_socket(str(path))
    assert os.path.lexists(path)


def test_accept_waits_no_longer_than_its_timeout(tmp_path):
    listener = Listener(str(tmp_path / "s"), backlog=1)
    try:
        with pytest.raises(TimeoutError):
            listener.accept(0.01)
    finally:
        listener.close()


def test_connect_tries_again_until_the_server_is_there(tmp_path):
    path = str(tmp_path / "s")
    server: list[Listener] = []
    now = [0.0]

    def sleep(seconds: float) -> None:  # the server appears on the third wait
        now[0] += seconds
        if now[0] >= 3 and not server:
            server.append(Listener(path))

    connector = Connector(path, interval=1.0, clock=lambda: now[0])
    sock = connector.connect(10.0, sleep=sleep)
    sock.close()
    server[0].close()
    assert connector.attempts == 4 and now[0] == 3.0


def test_connect_gives_up_at_its_timeout(tmp_path):
    now = [0.0]
    connector = Connector(str(tmp_path / "nobody"), interval=1.0, clock=lambda: now[0])
    with pytest.raises(FileNotFoundError):
        connector.connect(2.5, sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert connector.attempts == 4  # at 0, 1, 2 and 3 seconds


def test_poll_tries_only_when_due(tmp_path):
    now = [0.0]
    connector = Connector(str(tmp_path / "nobody"), interval=0.5, clock=lambda: now[0])
    assert connector.poll() is None and connector.attempts == 1
    assert connector.poll() is None and connector.attempts == 1
    now[0] = 0.5
    assert connector.poll() is None and connector.attempts == 2
