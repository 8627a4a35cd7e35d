"""Incremental decoding: a byte stream (with fds) in, whole messages out.

A ``MessageDecoder`` is fed what ``recvmsg`` returned, in any chunking, and
returns every message completed so far.  It checks the header (version,
reply flag, a size the request allows) as soon as the 12 header bytes are
in, so a peer announcing a huge payload is refused before we buffer it.

Fds: the kernel delivers SCM_RIGHTS fds with the first byte of the
``sendmsg`` that carried them, but one ``recvmsg`` may also return bytes of
earlier messages sent without fds (stream sockets glue them), and then
nothing says where the fds belong.  So read at most ``wanted`` bytes per
``recvmsg``: a chunk then never crosses a message boundary, and a batch of
fds belongs to the message whose bytes it arrived with.  (DPDK and QEMU's
libvhost-user read header, then payload, for the same reason.)  The decoder
owns the fds it is fed until it
hands them out in a ``Message``; on a protocol error it closes the fds of
the rejected message and every fd still pending.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .constants import HEADER_SIZE, VERSION, HeaderFlag
from .errors import BACKEND, FRONTEND, Side, VhostUserProtocolError
from .messages import HEADER, Message, reply_codec, request_name, spec_for


class MessageDecoder:
    """Decode the messages one peer sends.

    ``peer`` is who sends the bytes: ``"frontend"`` for a backend decoding
    requests, ``"backend"`` for a frontend decoding replies.  Errors blame
    the peer.  After an error the decoder stays failed.
    """

    def __init__(self, peer: Side) -> None:
        if peer not in (FRONTEND, BACKEND):
            raise ValueError(f"peer must be 'frontend' or 'backend', not {peer!r}")
        self.peer = peer
        self._buf = bytearray()
        self._start = 0  # stream offset of _buf[0]
        self._fds: list[tuple[int, int]] = []  # (stream offset it came with, fd)
        self._error: VhostUserProtocolError | None = None

    def feed(self, data: bytes, fds: Sequence[int] = ()) -> list[Message]:
        """Add bytes (and the fds received with them); return completed messages."""
        if self._error is not None:
            _close(fds)
            raise self._error
        offset = self._start + len(self._buf)
        self._fds.extend((offset, fd) for fd in fds)
        self._buf += data
        messages = []
        try:
            while (message := self._next()) is not None:
                messages.append(message)
        except VhostUserProtocolError as e:
            self._error = e
            _close(fd for _, fd in self._fds)
            self._fds.clear()
            raise
        return messages

    @property
    def wanted(self) -> int:
        """Bytes to read next: the rest of the header, else the rest of the message.

        Never more than one message, so fds stay with their message (see above).
        """
        if len(self._buf) < HEADER_SIZE:
            return HEADER_SIZE - len(self._buf)
        return HEADER_SIZE + HEADER.unpack_from(self._buf)[2] - len(self._buf)

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete message held back."""
        return len(self._buf)

    def close(self) -> None:
        """Close fds of an incomplete message (call when the connection ends)."""
        _close(fd for _, fd in self._fds)
        self._fds.clear()

    def _next(self) -> Message | None:
        if len(self._buf) < HEADER_SIZE:
            return None
        code, flags, size = HEADER.unpack_from(self._buf)
        name = request_name(code)
        request, spec = spec_for(code, self.peer)
        self._check_flags(name, flags)
        codec = reply_codec(spec) if self.peer == BACKEND else spec.body
        if size not in codec.sizes:
            raise VhostUserProtocolError(
                self.peer, name, f"payload size {size} is not valid for a {codec.name}"
                f" ({_sizes(codec.sizes)})")
        end = HEADER_SIZE + size
        if len(self._buf) < end:
            return None
        body = bytes(self._buf[HEADER_SIZE:end])
        fds = self._take_fds(self._start + end)
        del self._buf[:end]
        self._start += end
        try:
            value = codec.decode(body)
        except ValueError as e:
            _close(fds)
            raise VhostUserProtocolError(self.peer, name, f"bad {codec.name}: {e}") from None
        allowed = (0,) if self.peer == BACKEND else spec.allowed_fds(value)
        if len(fds) not in allowed:
            _close(fds)
            raise VhostUserProtocolError(
                self.peer, name, f"came with {len(fds)} fds, "
                f"{' or '.join(map(str, allowed))} required")
        return Message(request, flags, value, fds)

    def _check_flags(self, name: str, flags: int) -> None:
        version = flags & HeaderFlag.VERSION_MASK
        if version != VERSION:
            raise VhostUserProtocolError(self.peer, name, f"header version {version}, expected 1")
        is_reply = bool(flags & HeaderFlag.REPLY)
        if self.peer == BACKEND and not is_reply:
            raise VhostUserProtocolError(self.peer, name, "reply flag (0x4) missing in a reply")
        if self.peer == FRONTEND and is_reply:
            raise VhostUserProtocolError(self.peer, name, "reply flag (0x4) set in a request")

    def _take_fds(self, end: int) -> tuple[int, ...]:
        taken = tuple(fd for offset, fd in self._fds if offset < end)
        self._fds = [(offset, fd) for offset, fd in self._fds if offset >= end]
        return taken


def _sizes(sizes: frozenset[int]) -> str:
    ordered = sorted(sizes)
    if len(ordered) > 3 and ordered[-1] - ordered[0] == len(ordered) - 1:
        return f"{ordered[0]} to {ordered[-1]} bytes"
    return "expected " + " or ".join(map(str, ordered)) + " bytes"


def _close(fds) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass  # already closed by someone else: nothing left to leak
