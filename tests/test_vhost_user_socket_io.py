"""socket_io: the one test that opens sockets, passing real fds (memfd, eventfd)."""

import mmap
import os
import socket

import pytest

from snabbpy.lib.vhost_user import (
    Backend,
    Frontend,
    MemoryRegion,
    MemoryTable,
    Request,
    VringFile,
    VringState,
)
from snabbpy.lib.vhost_user.socket_io import recv_chunk, recv_messages, send_message


@pytest.fixture
def sockets():
    front, back = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    yield front, back
    front.close()
    back.close()


def test_memory_table_fd_maps_the_same_memory_on_the_other_side(sockets):
    front, back = sockets
    memfd = os.memfd_create("guest-ram")
    os.ftruncate(memfd, 4096)
    with mmap.mmap(memfd, 4096) as ours:
        ours[:5] = b"hello"
        table = MemoryTable((MemoryRegion(0, 4096, 0x7F0000000000, 0),))
        send_message(front, Frontend().send(Request.SET_MEM_TABLE, table, [memfd]), [memfd])
        (message,) = Backend().receive(*recv_chunk(back))
        (their_fd,) = message.fds
        assert their_fd != memfd
        with mmap.mmap(their_fd, message.payload.regions[0].memory_size) as theirs:
            assert theirs[:5] == b"hello"
        os.close(their_fd)
    os.close(memfd)


def test_kick_eventfd_signals_across_the_socket(sockets):
    front, back = sockets
    kick = os.eventfd(0, os.EFD_NONBLOCK)
    send_message(front, Frontend().send(Request.SET_VRING_KICK, VringFile(0), [kick]), [kick])
    (message,) = Backend().receive(*recv_chunk(back))
    (received,) = message.fds
    os.eventfd_write(kick, 1)  # the frontend kicks ...
    assert os.eventfd_read(received) == 1  # ... the backend sees it
    os.close(received)
    os.close(kick)


def test_messages_without_fds_and_peer_close(sockets):
    front, back = sockets
    frontend, backend = Frontend(), Backend()
    send_message(front, frontend.send(Request.GET_FEATURES))
    (request,) = backend.receive(*recv_chunk(back))
    send_message(back, backend.reply(request, 1 << 32))
    (reply,) = frontend.receive(*recv_chunk(front))
    assert reply.payload == 1 << 32
    front.close()
    assert recv_chunk(back) == (b"", [])


def test_fds_stay_with_their_message_when_messages_queue_up(sockets):
    # DPDK sends SET_VRING_NUM, _BASE, _ADDR then _KICK (with an fd) back to
    # back; one big recvmsg would return all four with the kick's fd.
    front, back = sockets
    frontend, backend = Frontend(), Backend()
    kick = os.eventfd(0)
    send_message(front, frontend.send(Request.SET_VRING_NUM, VringState(0, 256)))
    send_message(front, frontend.send(Request.SET_VRING_BASE, VringState(0, 0)))
    send_message(front, frontend.send(Request.SET_VRING_KICK, VringFile(0), [kick]), [kick])
    os.close(kick)
    messages = recv_messages(back, backend) + recv_messages(back, backend)
    messages += recv_messages(back, backend)
    assert [(m.request, len(m.fds)) for m in messages] == [
        (Request.SET_VRING_NUM, 0), (Request.SET_VRING_BASE, 0), (Request.SET_VRING_KICK, 1)]
    os.close(messages[2].fds[0])
    front.close()
    assert recv_messages(back, backend) == []
