"""The control channel: JSON objects a line, whole messages only, a closed
or garbled channel said once."""

import socket

import pytest

from snabbpy.workers.channel import Channel, ChannelClosed


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield Channel(a), Channel(b)
    a.close()
    b.close()


def test_messages_arrive_whole_and_in_order(pair):
    a, b = pair
    a.send({"op": "start", "n": 1})
    a.send({"op": "stop"})
    assert b.receive(timeout=None) == [{"op": "start", "n": 1}, {"op": "stop"}]
    assert b.receive(timeout=0) == []


def test_half_a_line_waits_for_the_rest(pair):
    a, b = pair
    a.sock.sendall(b'{"op": "re')
    assert b.receive(timeout=0) == []
    a.sock.sendall(b'ady"}\n')
    assert b.receive(timeout=None) == [{"op": "ready"}]


def test_the_messages_before_end_of_file_come_first(pair):
    a, b = pair
    a.send({"op": "stopped"})
    a.sock.close()
    assert b.receive(timeout=None) == [{"op": "stopped"}]
    with pytest.raises(ChannelClosed):
        b.receive(timeout=None)


@pytest.mark.parametrize("line", [b"not json\n", b"[1, 2]\n"])
def test_a_line_that_is_not_a_json_object_closes_the_channel(pair, line):
    a, b = pair
    a.sock.sendall(line)
    with pytest.raises(ChannelClosed, match="JSON"):
        b.receive(timeout=None)


def test_sending_to_a_closed_peer_is_channel_closed(pair):
    a, b = pair
    b.sock.close()
    with pytest.raises(ChannelClosed):
        for _ in range(1000):  # the first sends may still fill the buffer
            a.send({"op": "x" * 1000})
