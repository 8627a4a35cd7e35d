"""The queue handoff's messages (apps/vhost/handoff.py), without sockets:
what goes out comes back the same, and anything malformed is refused with
a message naming it, the fds that came with it closed."""

import json
import os

import pytest

from snabbpy.apps.vhost.handoff import HandoffError, decode, encode, fds_wanted

RING = {"op": "ring", "index": 3, "num": 256, "desc": 0x1000, "avail": 0x2000,
        "used": 0x3000, "base": 7, "features": 1 << 32, "enabled": True,
        "kick": True, "call": False}


def eventfds(n):
    return [os.eventfd(0) for _ in range(n)]


def is_closed(fd):
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


@pytest.mark.parametrize("msg, n", [
    ({"op": "hello", "pair": 1}, 0),
    ({"op": "memory", "regions": [[0, 1 << 20, 0x7f0000000000, 0], [1 << 20, 4096, 5, 64]]}, 2),
    (RING, 1),
    ({**RING, "kick": False, "call": False}, 0),
    ({"op": "stop", "index": 2}, 0),
    ({"op": "stopped", "index": 2, "base": 65535}, 0),
    ({"op": "enable", "index": 2, "enabled": False}, 0),
    ({"op": "active", "active": True}, 0),
    ({"op": "reset"}, 0),
    ({"op": "error", "error": "ring 3: no memory yet"}, 0),
    ({"op": "bye", "rings": [[2, 5], [3, 65535]]}, 0),
    ({"op": "bye", "rings": [[3, 0x80058005]]}, 0),  # a packed ring's state
])
def test_every_message_comes_back_as_it_went(msg, n):
    fds = eventfds(n)
    assert fds_wanted(msg) == n
    assert decode(encode(msg, fds), fds) == msg
    for fd in fds:
        os.close(fd)


@pytest.mark.parametrize("msg, error", [
    ([1, 2], "not a JSON object"),
    ({"op": "steal"}, "unknown op 'steal'"),
    ({"pair": 1}, "unknown op None"),
    ({"op": "hello", "pair": "1"}, "field 'pair' must be int"),
    ({"op": "hello", "pair": True}, "field 'pair' must be int"),
    ({"op": "hello"}, "field 'pair' must be int, not None"),
    ({"op": "hello", "pair": 1, "uid": 0}, "unknown fields uid"),
    ({"op": "stopped", "index": 2, "base": -1}, "field 'base' is negative"),
    ({**RING, "enabled": 1}, "field 'enabled' must be bool"),
    ({"op": "memory", "regions": []}, "0 regions"),
    ({"op": "memory", "regions": [[0, 1, 2, 3]] * 9}, "9 regions"),
    ({"op": "memory", "regions": [[0, 1, 2]]}, "is not 4 non-negative integers"),
    ({"op": "memory", "regions": [[0, 1, 2, -3]]}, "is not 4 non-negative integers"),
    ({"op": "bye", "rings": [[2, 1 << 32]]}, r"bye: ring \[2, 4294967296\] is not \[index, base\]"),
    ({"op": "bye", "rings": [3]}, "bye: ring 3 is not"),
])
def test_malformed_messages_are_refused_by_name(msg, error):
    with pytest.raises(HandoffError, match=error):
        decode(json.dumps(msg).encode(), [])
    with pytest.raises(HandoffError, match=error):
        encode(msg, [])


def test_a_message_with_the_wrong_fds_is_refused_and_they_are_closed():
    fds = eventfds(2)
    with pytest.raises(HandoffError, match="ring: came with 2 fds, needs 1"):
        decode(encode(RING, fds[:1]), fds)
    assert all(is_closed(fd) for fd in fds)
    fds = eventfds(1)
    with pytest.raises(HandoffError, match="not JSON"):
        decode(b"\xff{", fds)
    assert is_closed(fds[0])
    with pytest.raises(HandoffError, match="0 fds, needs 1"):
        encode(RING, [])
