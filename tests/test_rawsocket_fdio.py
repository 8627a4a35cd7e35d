"""The fd batch loop under RawSocket and Tap (``fdio.c`` via ``FdPort``),
on a datagram socketpair: no root, no interface, every counter by kind."""

import socket

import pytest

from snabbpy.apps.socket.fdapp import COUNTERS, FdPort
from snabbpy.core import packet
from snabbpy.core.counter import Counters
from snabbpy.core.link import Link

pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def port_on(sock, is_socket=True) -> FdPort:
    return FdPort(sock.fileno(), is_socket, Counters(COUNTERS))


@pytest.mark.parametrize("is_socket", [True, False], ids=["recv/send", "read/write"])
def test_frames_in_and_out_keep_their_bytes(pair, is_socket):
    a, b = pair
    port, out, inp = port_on(a, is_socket), Link(), Link()
    before = packet.in_use()
    for i in range(5):
        b.send(bytes([i]) * (60 + i))
    assert port.receive(out.c) == 5
    got = out.receive_batch()
    assert [packet.to_bytes(p) for p in got] == [bytes([i]) * (60 + i) for i in range(5)]
    for p in got:
        packet.free(p)
    inp.transmit(packet.from_bytes(b"hello"))
    assert port.send(inp.c) == 1 and b.recv(100) == b"hello"
    s = port.stats.snapshot()
    assert (s["rx_packets"], s["rx_bytes"], s["tx_packets"], s["tx_bytes"]) == (5, 310, 1, 5)
    port.close()
    assert packet.in_use() == before


def test_an_empty_fd_costs_no_packet(pair):
    port, out = port_on(pair[0]), Link()
    freed = packet.stats()["freed"]
    for _ in range(10):
        assert port.receive(out.c) == 0
    assert packet.stats()["freed"] == freed  # one spare packet, kept, not churned
    port.close()


@pytest.mark.parametrize("is_socket", [True, False], ids=["recv", "read (as a tap fd)"])
def test_frames_longer_than_a_packet_are_counted_and_dropped(pair, is_socket):
    # A tap fd, like a datagram socket, truncates a frame to the buffer
    # read() is given and says only how much it copied.
    a, b = pair
    port, out = port_on(a, is_socket), Link()
    before = packet.in_use()
    b.send(b"\x01" * (packet.PAYLOAD_SIZE + 1))
    b.send(b"\x02" * packet.PAYLOAD_SIZE)
    assert port.receive(out.c) == 1
    assert port.stats["rx_oversize"] == 1
    p = out.receive()
    assert packet.to_bytes(p) == b"\x02" * packet.PAYLOAD_SIZE  # the right buffer
    packet.free(p)
    port.close()
    assert packet.in_use() == before and packet.double_frees() == 0


def test_a_full_kernel_buffer_leaves_packets_on_the_link(pair):
    a, _ = pair
    port, inp = port_on(a), Link()
    for _ in range(1000):
        inp.transmit(packet.from_bytes(bytes(1000)))
    sent = port.send(inp.c)
    assert 0 < sent < 1000
    assert port.stats["tx_again"] == 1 and inp.nreadable() == 1000 - sent
    inp.drain()
    port.close()


def test_send_errors_drop_the_packet_and_are_reported(pair):
    a, b = pair
    port, inp = port_on(a), Link()
    b.close()
    inp.transmit(packet.from_bytes(b"x" * 60))
    assert port.send(inp.c) == 0
    assert inp.empty() and port.stats["tx_errors"] == 1
    assert port.report().startswith("last send error: ")
    port.close()


def test_the_receive_link_is_never_overfilled(pair):
    a, b = pair
    port, out = port_on(a), Link()
    for _ in range(5):
        b.send(b"y" * 60)
    out.transmit_batch([packet.from_bytes(b"z") for _ in range(out.nwritable() - 2)])
    assert port.receive(out.c) == 2
    assert out.full() and out.stats()["txdrop"] == 0
    out.drain()
    assert port.receive(out.c) == 3
    out.drain()
    port.close()
