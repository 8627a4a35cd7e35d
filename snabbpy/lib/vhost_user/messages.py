"""The request table and whole-message encoding.

``REQUESTS`` maps each supported request to the payload it carries, the
payload of the backend's reply (when the request always gets one) and the
fds allowed with it.  ``UNSUPPORTED`` names the requests the spec defines
but snabbpy refuses, with the reason given to the peer's logs.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import payloads as p
from .constants import HEADER_SIZE, VERSION, HeaderFlag, Request
from .errors import Side, VhostUserProtocolError

HEADER = struct.Struct("=III")
assert HEADER.size == HEADER_SIZE


@dataclass(frozen=True)
class RequestSpec:
    """How one request is carried: request payload, reply payload, fds."""

    body: p.Codec
    reply: p.Codec | None = None  # None: only an ack (u64) when need_reply
    fd_counts: Callable[[Any], tuple[int, ...]] | None = None  # None: body decides

    def allowed_fds(self, value: Any) -> tuple[int, ...]:
        """The fd counts allowed with a request carrying ``value``."""
        return self.fd_counts(value) if self.fd_counts else self.body.fd_counts(value)


def _one_fd(_value: Any) -> tuple[int, ...]:
    return (1,)


def _zero_or_one_fd(_value: Any) -> tuple[int, ...]:
    # REM_MEM_REG: the spec lets a backend accept (and close) a stray fd.
    return (0, 1)


R = Request
REQUESTS: dict[Request, RequestSpec] = {
    R.GET_FEATURES: RequestSpec(p.NO_PAYLOAD, p.U64_PAYLOAD),
    R.SET_FEATURES: RequestSpec(p.U64_PAYLOAD),
    R.SET_OWNER: RequestSpec(p.NO_PAYLOAD),
    R.RESET_OWNER: RequestSpec(p.NO_PAYLOAD),
    R.SET_MEM_TABLE: RequestSpec(p.TABLE),
    R.SET_VRING_NUM: RequestSpec(p.STATE),
    R.SET_VRING_ADDR: RequestSpec(p.ADDR),
    R.SET_VRING_BASE: RequestSpec(p.STATE),
    R.GET_VRING_BASE: RequestSpec(p.STATE, p.STATE),
    R.SET_VRING_KICK: RequestSpec(p.FILE),
    R.SET_VRING_CALL: RequestSpec(p.FILE),
    R.SET_VRING_ERR: RequestSpec(p.FILE),
    R.GET_PROTOCOL_FEATURES: RequestSpec(p.NO_PAYLOAD, p.U64_PAYLOAD),
    R.SET_PROTOCOL_FEATURES: RequestSpec(p.U64_PAYLOAD),
    R.GET_QUEUE_NUM: RequestSpec(p.NO_PAYLOAD, p.U64_PAYLOAD),
    R.SET_VRING_ENABLE: RequestSpec(p.STATE),
    R.SEND_RARP: RequestSpec(p.U64_PAYLOAD),  # MAC in the first 6 bytes
    R.NET_SET_MTU: RequestSpec(p.U64_PAYLOAD),
    R.SET_BACKEND_REQ_FD: RequestSpec(p.NO_PAYLOAD, fd_counts=_one_fd),
    R.SET_VRING_ENDIAN: RequestSpec(p.STATE),
    R.GET_CONFIG: RequestSpec(p.CONFIG, p.CONFIG_REPLY),
    R.SET_CONFIG: RequestSpec(p.CONFIG),
    R.RESET_DEVICE: RequestSpec(p.NO_PAYLOAD),
    R.VRING_KICK: RequestSpec(p.STATE),
    R.GET_MAX_MEM_SLOTS: RequestSpec(p.NO_PAYLOAD, p.U64_PAYLOAD),
    R.ADD_MEM_REG: RequestSpec(p.SINGLE_REGION, fd_counts=_one_fd),
    R.REM_MEM_REG: RequestSpec(p.SINGLE_REGION, fd_counts=_zero_or_one_fd),
    R.SET_STATUS: RequestSpec(p.U64_PAYLOAD),
    R.GET_STATUS: RequestSpec(p.NO_PAYLOAD, p.U64_PAYLOAD),
}

_NO_MIGRATION = "live migration is not supported (LOG_ALL and LOG_SHMFD are never offered)"
UNSUPPORTED: dict[Request, str] = {
    R.SET_LOG_BASE: "dirty-page logging: " + _NO_MIGRATION,
    R.SET_LOG_FD: "dirty-page logging: " + _NO_MIGRATION,
    R.IOTLB_MSG: "IOTLB / ACCESS_PLATFORM is not supported",
    R.CREATE_CRYPTO_SESSION: "not a crypto device",
    R.CLOSE_CRYPTO_SESSION: "not a crypto device",
    R.POSTCOPY_ADVISE: "postcopy: " + _NO_MIGRATION,
    R.POSTCOPY_LISTEN: "postcopy: " + _NO_MIGRATION,
    R.POSTCOPY_END: "postcopy: " + _NO_MIGRATION,
    R.GET_INFLIGHT_FD: "inflight I/O tracking (INFLIGHT_SHMFD) is not supported",
    R.SET_INFLIGHT_FD: "inflight I/O tracking (INFLIGHT_SHMFD) is not supported",
    R.GPU_SET_SOCKET: "not a GPU device",
}
ACK = p.U64_PAYLOAD  # REPLY_ACK: u64 0 on success, nonzero on failure


@dataclass(frozen=True)
class Message:
    """One vhost-user message: a request or a reply, its payload and fds."""

    request: Request
    flags: int
    payload: Any = None
    fds: tuple[int, ...] = field(default=())

    @property
    def is_reply(self) -> bool:
        """True for a backend's reply."""
        return bool(self.flags & HeaderFlag.REPLY)

    @property
    def need_reply(self) -> bool:
        """True when the frontend asked for a REPLY_ACK."""
        return bool(self.flags & HeaderFlag.NEED_REPLY)


def request_name(code: int) -> str:
    """The request's spec name (``SET_VRING_NUM``), or ``request <code>``."""
    try:
        return Request(code).name
    except ValueError:
        return f"request {code}"


def spec_for(code: int, side: Side) -> tuple[Request, RequestSpec]:
    """Look up a request code; a protocol error (blaming ``side``) if not supported."""
    try:
        request = Request(code)
    except ValueError:
        raise VhostUserProtocolError(side, f"request {code}", "unknown request code") from None
    if request in UNSUPPORTED:
        raise VhostUserProtocolError(side, request.name, "not supported: " + UNSUPPORTED[request])
    return request, REQUESTS[request]


def no_fds(_value: Any) -> tuple[int, ...]:
    """The fd rule of replies and most requests: none."""
    return (0,)


def reply_codec(spec: RequestSpec) -> p.Codec:
    """The codec of a reply to ``spec``'s request: its reply body, else an ack."""
    return spec.reply or ACK


def encode(request: Request, flags: int, codec: p.Codec, value: Any, fds: Sequence[int],
           fd_rule: Callable[[Any], tuple[int, ...]], side: Side) -> bytes:
    """Header + payload bytes for one message; ``side`` is who is sending.

    ``fd_rule`` gives the fd counts allowed with ``value`` (checked after the
    payload, so a payload of the wrong type is reported as such).
    """
    try:
        body = codec.encode(value)
    except ValueError as e:
        raise VhostUserProtocolError(side, request.name, f"cannot send {codec.name}: {e}") from None
    allowed_fds = fd_rule(value)
    if len(fds) not in allowed_fds:
        raise VhostUserProtocolError(
            side, request.name, f"{len(fds)} fds given, {_counts(allowed_fds)} required")
    return HEADER.pack(request, flags | VERSION, len(body)) + body


def _counts(allowed: tuple[int, ...]) -> str:
    return " or ".join(str(n) for n in allowed)
