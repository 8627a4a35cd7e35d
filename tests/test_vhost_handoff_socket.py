"""The handoff socket (apps/vhost/handoff_socket.py): whole messages with
their fds over SOCK_SEQPACKET, end of file seen as the peer gone, and the
owner's listener refusing this very process (it would wait on itself)."""

import os
import socket

import pytest

from snabbpy.apps.vhost.handoff import HandoffError
from snabbpy.apps.vhost.handoff_socket import (
    HandoffListener,
    Link,
    PeerGone,
    connect,
    handoff_path,
)


def test_a_message_and_its_fds_arrive_together():
    a, b = (Link(s) for s in socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET))
    kick = os.eventfd(0)
    a.send({"op": "ring", "index": 2, "num": 256, "desc": 1, "avail": 2, "used": 3,
            "base": 0, "features": 0, "enabled": True, "kick": True, "call": False}, [kick])
    a.send({"op": "stop", "index": 2})
    got = b.receive()
    assert got["op"] == "ring" and len(got["fds"]) == 1 and got["fds"][0] != kick
    os.eventfd_write(kick, 3)
    assert os.eventfd_read(got["fds"][0]) == 3  # the same eventfd, another descriptor
    assert b.receive() == {"op": "stop", "index": 2, "fds": []}
    assert b.receive() is None
    a.close()
    with pytest.raises(PeerGone):
        b.receive()
    for fd in (kick, got["fds"][0]):
        os.close(fd)
    b.close()


def test_the_listener_refuses_its_own_process_and_cleans_up(tmp_path):
    path = handoff_path(str(tmp_path / "v.sock"))
    assert path.endswith("v.sock.queues")
    listener = HandoffListener(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    link = connect(path)
    with pytest.raises(HandoffError, match=f"pid {os.getpid()} .* refused"):
        listener.poll()
    assert listener.poll() is None
    link.close()
    listener.close()
    assert not os.path.exists(path) and connect(path) is None
    HandoffListener(path).sock.close()  # a stale socket file is replaced
    HandoffListener(path).close()
