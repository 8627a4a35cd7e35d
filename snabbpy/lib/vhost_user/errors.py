"""The one exception of the vhost-user codec."""

from __future__ import annotations

from typing import Literal

Side = Literal["frontend", "backend"]
FRONTEND: Side = "frontend"
BACKEND: Side = "backend"


class VhostUserProtocolError(ValueError):
    """A message broke the vhost-user protocol.

    ``side`` is the side that was wrong: the peer when we decoded its bytes,
    ourselves when we were asked to encode something illegal.  ``request``
    names the request (or ``"header"`` when it could not be known).  The
    connection cannot continue after this: its byte stream is out of step.
    """

    def __init__(self, side: Side, request: str, problem: str) -> None:
        super().__init__(f"vhost-user {side} error in {request}: {problem}")
        self.side = side
        self.request = request
        self.problem = problem
