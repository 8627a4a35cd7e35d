"""vhost-user codec: a Frontend talking to a Backend with no socket between.

Each test reads as an example: the frontend builds a request, the backend
decodes it, the backend replies, the frontend decodes the reply.
"""

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snabbpy.lib.vhost_user import (
    REQUESTS,
    UNSUPPORTED,
    Backend,
    DeviceConfig,
    Frontend,
    HeaderFlag,
    MemoryRegion,
    MemoryTable,
    MessageDecoder,
    ProtocolFeature,
    Request,
    VhostUserProtocolError,
    VringAddr,
    VringFile,
    VringState,
    protocol_feature_names,
)

HEADER = struct.Struct("=III")
REGION = MemoryRegion(guest_phys_addr=0x1000, memory_size=0x200000,
                      userspace_addr=0x7F0000001000, mmap_offset=0)


class Pair:
    """A frontend and a backend joined in memory (like h11's ConnectionPair)."""

    def __init__(self):
        self.frontend = Frontend()
        self.backend = Backend()

    def request(self, request, payload=None, fds=(), need_reply=False):
        data = self.frontend.send(request, payload, fds, need_reply)
        (message,) = self.backend.receive(data, fds)
        return message

    def reply(self, data):
        return self.frontend.receive(data)


@pytest.fixture
def pair():
    return Pair()


def raw(request, payload=b"", flags=1, size=None):
    """A hand-made message, for what a well-behaved encoder never builds."""
    return HEADER.pack(request, flags, len(payload) if size is None else size) + payload


# --- every request round-trips -------------------------------------------

ROUND_TRIPS = [
    (Request.GET_FEATURES, None, 0),
    (Request.SET_FEATURES, 1 << 32 | 1 << 30, 0),
    (Request.SET_OWNER, None, 0),
    (Request.RESET_OWNER, None, 0),
    (Request.SET_MEM_TABLE, MemoryTable((REGION,)), 1),
    (Request.SET_VRING_NUM, VringState(0, 256), 0),
    (Request.SET_VRING_ADDR, VringAddr(1, 0, 0x7F0000100000, 0x7F0000102000, 0x7F0000101000), 0),
    (Request.SET_VRING_BASE, VringState(1, 0), 0),
    (Request.GET_VRING_BASE, VringState(1, 0), 0),
    (Request.SET_VRING_KICK, VringFile(0), 1),
    (Request.SET_VRING_CALL, VringFile(1, nofd=True), 0),
    (Request.SET_VRING_ERR, VringFile(255), 1),
    (Request.GET_PROTOCOL_FEATURES, None, 0),
    (Request.SET_PROTOCOL_FEATURES, 1 << ProtocolFeature.REPLY_ACK, 0),
    (Request.GET_QUEUE_NUM, None, 0),
    (Request.SET_VRING_ENABLE, VringState(0, 1), 0),
    (Request.SEND_RARP, 0x0000563412005452, 0),
    (Request.NET_SET_MTU, 1500, 0),
    (Request.SET_BACKEND_REQ_FD, None, 1),
    (Request.SET_VRING_ENDIAN, VringState(0, 0), 0),
    (Request.GET_CONFIG, DeviceConfig(0, bytes(10)), 0),
    (Request.SET_CONFIG, DeviceConfig(6, b"\x01\x00"), 0),
    (Request.RESET_DEVICE, None, 0),
    (Request.VRING_KICK, VringState(0, 0), 0),
    (Request.GET_MAX_MEM_SLOTS, None, 0),
    (Request.ADD_MEM_REG, REGION, 1),
    (Request.REM_MEM_REG, REGION, 0),
    (Request.SET_STATUS, 0x0F, 0),
    (Request.GET_STATUS, None, 0),
]


def test_round_trip_table_covers_every_supported_request():
    assert {r for r, _, _ in ROUND_TRIPS} == set(REQUESTS)


def _name(value):
    return getattr(value, "name", "")


@pytest.mark.parametrize("request_, payload, nfds", ROUND_TRIPS, ids=_name)
def test_every_request_round_trips(pair, request_, payload, nfds):
    fds = tuple(range(1000, 1000 + nfds))  # never closed: the round trip succeeds
    message = pair.request(request_, payload, fds)
    assert (message.request, message.payload, message.fds) == (request_, payload, fds)
    assert not message.is_reply and not message.need_reply


def test_feature_negotiation(pair):
    offered = 1 << 32 | 1 << 30 | 1 << 15
    request = pair.request(Request.GET_FEATURES)
    assert pair.frontend.waiting == (Request.GET_FEATURES,)
    (reply,) = pair.reply(pair.backend.reply(request, offered))
    assert reply.is_reply and reply.payload == offered
    assert pair.frontend.waiting == ()
    assert pair.request(Request.SET_FEATURES, offered & ~(1 << 15)).payload == 1 << 32 | 1 << 30


def test_get_vring_base_reply_is_a_vring_state(pair):
    request = pair.request(Request.GET_VRING_BASE, VringState(1, 0))
    (reply,) = pair.reply(pair.backend.reply(request, VringState(1, 4711)))
    assert reply.payload == VringState(1, 4711)
    assert pair.frontend.waiting == ()


def test_get_config_failure_is_an_empty_reply(pair):
    request = pair.request(Request.GET_CONFIG, DeviceConfig(0, bytes(6)))
    (reply,) = pair.reply(pair.backend.reply(request, None))
    assert reply.payload is None


def test_reply_ack_only_when_asked(pair):
    plain = pair.request(Request.SET_VRING_NUM, VringState(0, 256))
    assert pair.backend.ack(plain) == b""
    asked = pair.request(Request.SET_VRING_NUM, VringState(0, 256), need_reply=True)
    assert asked.need_reply and asked.flags == HeaderFlag.NEED_REPLY | 1
    (ack,) = pair.reply(pair.backend.ack(asked))
    assert ack.payload == 0 and Frontend.ack_ok(ack)
    failed = pair.request(Request.SET_VRING_NUM, VringState(0, 3), need_reply=True)
    (nack,) = pair.reply(pair.backend.ack(failed, ok=False))
    assert nack.payload == 1 and not Frontend.ack_ok(nack)


def test_need_reply_on_a_get_is_answered_by_its_reply(pair):
    request = pair.request(Request.GET_QUEUE_NUM, need_reply=True)
    assert pair.backend.ack(request) == b""
    (reply,) = pair.reply(pair.backend.reply(request, 1))
    assert reply.payload == 1


def test_reply_body_only_for_requests_that_have_one(pair):
    request = pair.request(Request.SET_OWNER)
    with pytest.raises(VhostUserProtocolError, match="backend error in SET_OWNER: has no reply"):
        pair.backend.reply(request, 0)


def test_full_size_memory_table_is_accepted():
    # Some frontends send the whole fixed 8-region struct whatever nregions says.
    body = struct.pack("=II", 1, 0) + struct.pack("=QQQQ", 0x1000, 0x1000, 0x7000, 0)
    body += bytes(7 * 32)
    (message,) = Backend().receive(raw(Request.SET_MEM_TABLE, body), [os.dup(0)])
    os.close(message.fds[0])
    assert message.payload.regions[0].memory_size == 0x1000


def test_protocol_feature_names():
    assert protocol_feature_names(0x10009) == ["MQ", "REPLY_ACK", "STATUS"]


# --- incremental decoding --------------------------------------------------

def test_decoder_takes_any_chunking_and_keeps_fds_with_their_message(pair):
    stream = b"".join([
        pair.frontend.send(Request.SET_OWNER),
        pair.frontend.send(Request.SET_VRING_KICK, VringFile(0), fds=[1001]),
        pair.frontend.send(Request.SET_VRING_CALL, VringFile(0), fds=[1002]),
    ])
    decoder = MessageDecoder(peer="frontend")
    messages = []
    for i in range(len(stream)):  # one byte at a time; fds with each message's first byte
        fds = {12: [1001], 32: [1002]}.get(i, [])
        messages += decoder.feed(stream[i:i + 1], fds)
    assert [m.request for m in messages] == [Request.SET_OWNER, Request.SET_VRING_KICK,
                                             Request.SET_VRING_CALL]
    assert [m.fds for m in messages] == [(), (1001,), (1002,)]
    assert decoder.pending_bytes == 0


def test_decoder_wants_one_message_at_a_time(pair):
    decoder = MessageDecoder(peer="frontend")
    assert decoder.wanted == 12  # a header first
    data = pair.frontend.send(Request.SET_VRING_NUM, VringState(0, 256))
    assert decoder.feed(data[:5]) == [] and decoder.wanted == 7
    assert decoder.feed(data[5:12]) == [] and decoder.wanted == 8  # then its payload
    assert len(decoder.feed(data[12:])) == 1 and decoder.wanted == 12


def test_decoder_returns_several_messages_from_one_chunk(pair):
    data = pair.frontend.send(Request.GET_FEATURES) + pair.frontend.send(Request.GET_QUEUE_NUM)
    assert [m.request for m in pair.backend.receive(data)] == [Request.GET_FEATURES,
                                                               Request.GET_QUEUE_NUM]


# --- malformed input is rejected, naming the request and the side ---------

MALFORMED = [
    (raw(99), "frontend error in request 99: unknown request code"),
    (raw(Request.SET_LOG_BASE, bytes(16)), "frontend error in SET_LOG_BASE: not supported"),
    (raw(Request.SET_LOG_FD), "SET_LOG_FD: not supported: dirty-page logging"),
    (raw(Request.GET_FEATURES, flags=2), "GET_FEATURES: header version 2, expected 1"),
    (raw(Request.GET_FEATURES, flags=0x5), "GET_FEATURES: reply flag \\(0x4\\) set in a request"),
    (raw(Request.SET_VRING_NUM, bytes(4)),
     "frontend error in SET_VRING_NUM: payload size 4 is not valid for a vring state"),
    (raw(Request.GET_FEATURES, bytes(8)), "GET_FEATURES: payload size 8 is not valid"),
    (raw(Request.SET_MEM_TABLE, size=1 << 31), "SET_MEM_TABLE: payload size 2147483648"),
    (raw(Request.SET_CONFIG, size=12 + 257), "SET_CONFIG: payload size 269 is not valid"),
    (raw(Request.SET_MEM_TABLE, struct.pack("=II", 9, 0) + bytes(256)),
     "SET_MEM_TABLE: bad memory table: 9 memory regions, at most 8"),
    (raw(Request.SET_MEM_TABLE, struct.pack("=II", 2, 0) + bytes(32)),
     "SET_MEM_TABLE: bad memory table: payload is 40 bytes but 2 regions need 72"),
    (raw(Request.SET_MEM_TABLE, struct.pack("=II", 1, 0) + bytes(32)),
     "SET_MEM_TABLE: bad memory table: memory region has size 0"),
    (raw(Request.SET_MEM_TABLE, struct.pack("=IIQQQQ", 1, 0, 2**64 - 4096, 8192, 0, 0)),
     "guest_phys_addr \\+ memory_size wraps"),
    (raw(Request.SET_VRING_KICK, struct.pack("=Q", 0x200)), "bits above bit 8, which are reserved"),
    (raw(Request.SET_VRING_KICK, struct.pack("=Q", 0)),
     "SET_VRING_KICK: came with 0 fds, 1 required"),
    (raw(Request.SET_CONFIG, struct.pack("=III", 0, 4, 0) + bytes(2)),
     "SET_CONFIG: bad device config: payload is 14 bytes, expected 16"),
]


@pytest.mark.parametrize("data, message", MALFORMED)
def test_malformed_request_is_rejected(data, message):
    with pytest.raises(VhostUserProtocolError, match=message) as info:
        Backend().receive(data)
    assert info.value.side == "frontend"
    assert isinstance(info.value, ValueError)


def test_wrong_fd_count_closes_the_fds():
    fds = [os.eventfd(0), os.eventfd(0)]
    with pytest.raises(VhostUserProtocolError, match="SET_VRING_CALL: came with 2 fds, 1 required"):
        Backend().receive(raw(Request.SET_VRING_CALL, struct.pack("=Q", 0)), fds)
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)


def test_nofd_kick_with_an_fd_is_rejected_and_closed():
    fd = os.eventfd(0)
    with pytest.raises(VhostUserProtocolError, match="came with 1 fds, 0 required"):
        Backend().receive(raw(Request.SET_VRING_KICK, struct.pack("=Q", 0x100)), [fd])
    with pytest.raises(OSError):
        os.fstat(fd)


def test_decoder_stays_failed_after_an_error():
    backend = Backend()
    with pytest.raises(VhostUserProtocolError):
        backend.receive(raw(99))
    with pytest.raises(VhostUserProtocolError, match="request 99"):
        backend.receive(raw(Request.SET_OWNER))


def test_backend_reply_without_reply_flag_is_a_backend_error(pair):
    pair.frontend.send(Request.GET_FEATURES)
    with pytest.raises(VhostUserProtocolError, match="backend error in GET_FEATURES: reply flag"):
        pair.reply(raw(Request.GET_FEATURES, bytes(8)))


def test_unexpected_reply_is_a_backend_error(pair):
    pair.frontend.send(Request.GET_FEATURES)
    expected = "backend error in GET_QUEUE_NUM: unexpected reply \\(waiting for GET_FEATURES"
    with pytest.raises(VhostUserProtocolError, match=expected):
        pair.reply(raw(Request.GET_QUEUE_NUM, bytes(8), flags=5))


def test_reply_with_fds_is_a_backend_error(pair):
    pair.frontend.send(Request.GET_FEATURES)
    with pytest.raises(VhostUserProtocolError, match="came with 1 fds, 0 required"):
        pair.frontend.receive(raw(Request.GET_FEATURES, bytes(8), flags=5), [os.eventfd(0)])


def test_reply_with_wrong_size_is_a_backend_error(pair):
    pair.frontend.send(Request.GET_VRING_BASE, VringState(0, 0))
    expected = "backend error in GET_VRING_BASE: payload size 4"
    with pytest.raises(VhostUserProtocolError, match=expected):
        pair.reply(raw(Request.GET_VRING_BASE, bytes(4), flags=5))


# --- the local side misusing the encoder is blamed on itself --------------

LOCAL_MISUSE = [
    (Request.SET_VRING_NUM, 256, (),
     "frontend error in SET_VRING_NUM: cannot send vring state: needs"),
    (Request.SET_MEM_TABLE, MemoryTable((REGION,) * 9), range(9), "9 memory regions, at most 8"),
    (Request.SET_MEM_TABLE, MemoryTable((REGION,) * 2), (5,), "1 fds given, 2 required"),
    (Request.SET_VRING_KICK, VringFile(256), (5,), "ring index 256 does not fit in 8 bits"),
    (Request.SET_VRING_CALL, VringFile(0, nofd=True), (5,), "1 fds given, 0 required"),
    (Request.SET_FEATURES, -1, (), "unsigned 64-bit"),
    (Request.SET_CONFIG, DeviceConfig(0, bytes(257)), (), "257 bytes, at most 256"),
    (Request.SET_LOG_BASE, 0, (), "SET_LOG_BASE: not supported"),
]


@pytest.mark.parametrize("request_, payload, fds, message", LOCAL_MISUSE)
def test_frontend_refuses_to_send_illegal_requests(request_, payload, fds, message):
    with pytest.raises(VhostUserProtocolError, match=message) as info:
        Frontend().send(request_, payload, tuple(fds))
    assert info.value.side == "frontend"


def test_unsupported_requests_are_named_in_one_table():
    assert Request.SET_LOG_BASE in UNSUPPORTED and Request.SET_LOG_FD in UNSUPPORTED
    assert not set(UNSUPPORTED) & set(REQUESTS)
    assert set(UNSUPPORTED) | set(REQUESTS) == set(Request)


# --- property: random bytes decode or raise the protocol error, nothing else

@settings(max_examples=500)
@given(st.binary(max_size=400), st.sampled_from(["frontend", "backend"]))
def test_random_bytes_decode_or_raise_protocol_error(data, peer):
    try:
        MessageDecoder(peer).feed(data)
    except VhostUserProtocolError:
        pass


@settings(max_examples=500)
@given(st.sampled_from(sorted(set(Request))), st.integers(0, 15), st.binary(max_size=300))
def test_random_payloads_under_valid_headers_decode_or_raise(code, flags, body):
    try:
        MessageDecoder("frontend").feed(raw(code, body, flags=flags))
    except VhostUserProtocolError:
        pass
