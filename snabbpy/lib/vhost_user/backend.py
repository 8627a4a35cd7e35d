"""The backend (device) side of a vhost-user connection, with no I/O.

The VhostUser app uses it: ``receive()`` turns socket bytes and fds into
requests; for each, the app acts and then calls ``reply()`` (requests with a
reply body: GET_FEATURES, GET_VRING_BASE ...) or ``ack()`` (everything else;
returns the REPLY_ACK bytes when the frontend asked for one, else nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .constants import HeaderFlag
from .decoder import MessageDecoder
from .errors import BACKEND, FRONTEND, VhostUserProtocolError
from .messages import ACK, REQUESTS, Message, encode, no_fds


class Backend:
    """Decode the frontend's requests and build the replies to them."""

    def __init__(self) -> None:
        self._decoder = MessageDecoder(peer=FRONTEND)

    @property
    def wanted(self) -> int:
        """How many bytes to ask the next ``recvmsg`` for (see ``MessageDecoder.wanted``)."""
        return self._decoder.wanted

    def receive(self, data: bytes, fds: Sequence[int] = ()) -> list[Message]:
        """Requests completed by ``data``; the caller owns the fds in them."""
        return self._decoder.feed(data, fds)

    def reply(self, request: Message, payload: Any) -> bytes:
        """The reply to a request that always has one (GET_FEATURES, GET_CONFIG ...)."""
        spec = REQUESTS[request.request]
        if spec.reply is None:
            raise VhostUserProtocolError(BACKEND, request.request.name,
                                         "has no reply body; use ack()")
        return encode(request.request, HeaderFlag.REPLY, spec.reply, payload, (), no_fds, BACKEND)

    def ack(self, request: Message, ok: bool = True, status: int | None = None) -> bytes:
        """The REPLY_ACK for ``request`` if it asked for one, else ``b""``.

        ``status`` overrides the u64 sent (0 success, nonzero failure).
        Requests with a reply body are answered by ``reply()`` instead, so
        this returns ``b""`` for them.
        """
        spec = REQUESTS[request.request]
        if not request.need_reply or spec.reply is not None:
            return b""
        value = status if status is not None else (0 if ok else 1)
        return encode(request.request, HeaderFlag.REPLY, ACK, value, (), no_fds, BACKEND)

    def close(self) -> None:
        """Close fds held for an incomplete request (connection is ending)."""
        self._decoder.close()

