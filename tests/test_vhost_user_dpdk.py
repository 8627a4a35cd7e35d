"""The vhost-user codec against DPDK, a peer no one here wrote.

- our ``Frontend`` negotiates with testpmd's ``net_vhost`` backend;
- our ``Backend`` decodes the whole setup that testpmd's ``virtio_user``
  frontend sends, answering just enough to keep it going.
Needs dpdk-testpmd (scripts/install-dpdk.sh).
"""

import os
import socket
import threading

import pytest
from helpers_testpmd import TestPmd, have_testpmd

from snabbpy.lib.vhost_user import (
    Backend,
    Frontend,
    ProtocolFeature,
    Request,
    VringFile,
    VringState,
)
from snabbpy.lib.vhost_user.socket_io import recv_chunk, recv_messages, send_message
from snabbpy.lib.virtio import Feature, feature_mask

pytestmark = [pytest.mark.interop,
              pytest.mark.skipif(not have_testpmd(), reason="dpdk-testpmd not installed")]


def call(sock, frontend, request, payload=None, fds=(), need_reply=False):
    """Send one request and collect the replies it asked for."""
    send_message(sock, frontend.send(request, payload, fds, need_reply), fds)
    replies = []
    while frontend.waiting:
        data, received = recv_chunk(sock)
        assert data, "backend closed the connection"
        replies += frontend.receive(data, received)
    return replies


def test_frontend_negotiates_with_dpdk_net_vhost(tmp_path):
    path = str(tmp_path / "vhost.sock")
    with TestPmd.vhost_backend(path, forward_mode="io"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(path)
            frontend = Frontend()
            call(sock, frontend, Request.SET_OWNER)
            (features,) = call(sock, frontend, Request.GET_FEATURES)
            assert features.payload & feature_mask(Feature.VERSION_1,
                                                   Feature.VHOST_USER_PROTOCOL_FEATURES)
            (protocol,) = call(sock, frontend, Request.GET_PROTOCOL_FEATURES)
            assert protocol.payload >> ProtocolFeature.REPLY_ACK & 1
            wanted = 1 << ProtocolFeature.REPLY_ACK | 1 << ProtocolFeature.MQ
            assert call(sock, frontend, Request.SET_PROTOCOL_FEATURES, wanted) == []
            (queues,) = call(sock, frontend, Request.GET_QUEUE_NUM)
            assert queues.payload >= 1
            (ok,) = call(sock, frontend, Request.SET_VRING_NUM, VringState(0, 256), need_reply=True)
            assert Frontend.ack_ok(ok)
            (bad,) = call(sock, frontend, Request.SET_VRING_NUM, VringState(0, 3), need_reply=True)
            assert not Frontend.ack_ok(bad)  # DPDK refuses a non-power-of-two ring
            call_fd = os.eventfd(0)
            try:
                (ok,) = call(sock, frontend, Request.SET_VRING_CALL, VringFile(0), [call_fd],
                             need_reply=True)
            finally:
                os.close(call_fd)
            assert Frontend.ack_ok(ok)


OFFER = feature_mask(Feature.VERSION_1, Feature.VHOST_USER_PROTOCOL_FEATURES,
                     Feature.NET_MRG_RXBUF)
PROTOCOL_OFFER = 1 << ProtocolFeature.MQ | 1 << ProtocolFeature.REPLY_ACK


def answer(backend, request, status):
    """Bytes answering one request, as a minimal device would."""
    replies = {
        Request.GET_FEATURES: OFFER, Request.GET_PROTOCOL_FEATURES: PROTOCOL_OFFER,
        Request.GET_QUEUE_NUM: 1, Request.GET_STATUS: status,
        Request.GET_VRING_BASE: VringState(getattr(request.payload, "index", 0), 0),
    }
    if request.request in replies:
        return backend.reply(request, replies[request.request])
    return backend.ack(request)


def serve(conn, seen, errors):
    """Answer a frontend until it hangs up, recording the requests."""
    try:
        _serve(conn, seen)
    except Exception as e:  # reported by the test, not lost in the thread
        errors.append(e)


def _serve(conn, seen):
    backend, status = Backend(), 0
    while requests := recv_messages(conn, backend):
        for request in requests:
            seen.append(request.request)
            for fd in request.fds:
                os.close(fd)
            if request.request == Request.SET_STATUS:
                status = request.payload
            if reply := answer(backend, request, status):
                send_message(conn, reply)


def test_backend_decodes_dpdk_virtio_user_setup(tmp_path):
    path = str(tmp_path / "vhost.sock")
    seen, errors = [], []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        server.settimeout(60)
        # virtio_user negotiates while it starts, so serve it from a thread
        # while testpmd starts, then quit it: it hangs up when done.
        pmd = TestPmd.virtio_user(path, forward_mode="io")
        pmd.start(wait=False)
        try:
            conn, _ = server.accept()
            conn.settimeout(60)
            with conn:
                thread = threading.Thread(target=serve, args=(conn, seen, errors), daemon=True)
                thread.start()
                pmd.wait_ready()
                assert pmd.close() == 0
                thread.join(60)
        finally:
            pmd.close()
    assert errors == []
    for request in (Request.GET_FEATURES, Request.SET_FEATURES, Request.SET_MEM_TABLE,
                    Request.SET_VRING_NUM, Request.SET_VRING_ADDR, Request.SET_VRING_KICK,
                    Request.SET_VRING_CALL, Request.SET_VRING_ENABLE, Request.GET_VRING_BASE):
        assert request in seen
