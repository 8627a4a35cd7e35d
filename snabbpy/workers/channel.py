"""The control channel between the supervisor and a worker: JSON objects,
one a line, over a stream socket (a socketpair made at spawn)."""

from __future__ import annotations

import json
import select
import socket
from typing import Any

#: Longest message line accepted (a worker's final report fits many times).
MAX_LINE = 64 << 20


class ChannelClosed(Exception):
    """The other end closed the channel (or sent a line that is not JSON)."""


class Channel:
    """Sends and receives JSON objects on ``sock``."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""
        self.closed = False

    def send(self, message: dict[str, Any]) -> None:
        """Sends one message (blocking until it is written). ChannelClosed
        when the other end is gone."""
        try:
            self.sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError as exc:
            self.closed = True
            raise ChannelClosed(str(exc)) from None

    def receive(self, timeout: float | None = 0.0) -> list[dict[str, Any]]:
        """The messages that arrived, waiting up to ``timeout`` seconds
        (None: until one comes) when none has. ChannelClosed at end of file
        once the messages before it were returned."""
        messages = self._split()
        if messages or self.closed:
            if not messages and self.closed:
                raise ChannelClosed("channel closed")
            return messages
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if ready:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                data = b""
            if not data:
                self.closed = True
            self._buffer += data
            if len(self._buffer) > MAX_LINE:
                raise ChannelClosed(f"message longer than {MAX_LINE} bytes")
        messages = self._split()
        if not messages and self.closed:
            raise ChannelClosed("channel closed")
        return messages

    def _split(self) -> list[dict[str, Any]]:
        *lines, self._buffer = self._buffer.split(b"\n")
        try:
            messages = [json.loads(line) for line in lines if line]
        except ValueError as exc:
            raise ChannelClosed(f"not a JSON message: {exc}") from None
        if not all(isinstance(m, dict) for m in messages):
            raise ChannelClosed("a message that is not a JSON object")
        return messages

    def close(self) -> None:
        """Closes this end."""
        self.closed = True
        self.sock.close()
