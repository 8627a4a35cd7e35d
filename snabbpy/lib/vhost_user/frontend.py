"""The frontend (driver) side of a vhost-user connection, with no I/O.

vguest's vhost-user transport uses it: ``send()`` returns the bytes to write
(the caller passes the fds along with them), ``receive()`` takes what the
socket gave and returns the backend's replies, each checked against the
request that is waiting for it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from .constants import HeaderFlag, Request
from .decoder import MessageDecoder
from .errors import BACKEND, FRONTEND, VhostUserProtocolError
from .messages import REQUESTS, UNSUPPORTED, Message, encode


class Frontend:
    """Build requests and match the backend's replies to them, in order."""

    def __init__(self) -> None:
        self._decoder = MessageDecoder(peer=BACKEND)
        self._waiting: deque[Request] = deque()

    @property
    def waiting(self) -> tuple[Request, ...]:
        """Requests sent whose replies have not arrived yet, oldest first."""
        return tuple(self._waiting)

    def send(self, request: Request, payload: Any = None, fds: Sequence[int] = (),
             need_reply: bool = False) -> bytes:
        """Bytes of one request; ``need_reply`` asks for a REPLY_ACK.

        The backend only honours ``need_reply`` once REPLY_ACK is negotiated;
        requests that always have a reply (GET_*) get that reply either way.
        """
        request = Request(request)
        if request in UNSUPPORTED:
            raise VhostUserProtocolError(FRONTEND, request.name,
                                         "not supported: " + UNSUPPORTED[request])
        spec = REQUESTS[request]
        flags = HeaderFlag.NEED_REPLY if need_reply else 0
        data = encode(request, flags, spec.body, payload, fds, spec.allowed_fds, FRONTEND)
        if spec.reply is not None or need_reply:
            self._waiting.append(request)
        return data

    @property
    def wanted(self) -> int:
        """How many bytes to ask the next ``recvmsg`` for (see ``MessageDecoder.wanted``)."""
        return self._decoder.wanted

    def receive(self, data: bytes, fds: Sequence[int] = ()) -> list[Message]:
        """Replies completed by ``data``; an unexpected reply is a backend error."""
        replies = self._decoder.feed(data, fds)
        for reply in replies:
            if not self._waiting or self._waiting[0] != reply.request:
                expected = self._waiting[0].name if self._waiting else "nothing"
                raise VhostUserProtocolError(
                    BACKEND, reply.request.name, f"unexpected reply (waiting for {expected})")
            self._waiting.popleft()
        return replies

    @staticmethod
    def ack_ok(reply: Message) -> bool:
        """True when a REPLY_ACK reply says success (u64 0)."""
        return reply.payload == 0
