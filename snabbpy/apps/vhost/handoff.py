"""The queue handoff protocol: how the VhostUser that owns a device lends
one queue pair to a VhostQueue in another process (sans I/O).

A message is one JSON object (its ``op`` and fields) and the file
descriptors that travel with it (SCM_RIGHTS); ``encode`` and ``decode``
check both against ``OPS`` and refuse, with ``HandoffError`` naming what is
wrong, anything else. Worker to owner: ``hello`` (the pair it serves),
``stopped``/``reset_done`` (answers), ``error``, ``bye`` (it stops
serving: the positions of the rings it ran, as ``[index, base]``; a base is
a split ring's avail index or a packed ring's 32-bit state). Owner to worker:
``memory`` (the regions, one fd each), ``ring`` (one started ring, with its
kick and call eventfds when it has them), ``enable``, ``active`` (the
control queue's VQ_PAIRS_SET gate), ``stop`` (answer: ``stopped`` with the
ring's position, as in ``bye``), ``reset`` (disconnect: stop all, unmap).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

#: Fields of each message, by op, and their types.
OPS: dict[str, dict[str, type]] = {
    "hello": {"pair": int},
    "memory": {"regions": list},
    "ring": {"index": int, "num": int, "desc": int, "avail": int, "used": int,
             "base": int, "features": int, "enabled": bool, "kick": bool, "call": bool},
    "enable": {"index": int, "enabled": bool},
    "active": {"active": bool},
    "stop": {"index": int},
    "stopped": {"index": int, "base": int},
    "reset": {},
    "reset_done": {},
    "error": {"error": str},
    "bye": {"rings": list},
}
#: Longest encoded message (eight regions fit many times).
MAX_MESSAGE = 16384
#: Most fds one message carries (a memory table's regions).
MAX_FDS = 8
#: The fields of one memory region, in the order ``memory`` lists them.
REGION_FIELDS = ("guest_phys_addr", "memory_size", "userspace_addr", "mmap_offset")


class HandoffError(ValueError):
    """A handoff message that is malformed or comes out of order."""


def fds_wanted(msg: dict[str, Any]) -> int:
    """How many fds travel with ``msg``."""
    op = msg["op"]
    if op == "memory":
        return len(msg["regions"])
    if op == "ring":
        return int(msg["kick"]) + int(msg["call"])
    return 0


def _check(msg: object) -> dict[str, Any]:
    if not isinstance(msg, dict):
        raise HandoffError("handoff message is not a JSON object")
    op = msg.get("op")
    fields = OPS.get(op) if isinstance(op, str) else None
    if fields is None:
        raise HandoffError(f"handoff message with unknown op {op!r}")
    extra = set(msg) - set(fields) - {"op"}
    if extra:
        raise HandoffError(f"{op}: unknown fields {', '.join(sorted(extra))}")
    for name, kind in fields.items():
        value = msg.get(name)
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if not ok:
            raise HandoffError(f"{op}: field {name!r} must be {kind.__name__}, not {value!r}")
        if kind is int and value < 0:
            raise HandoffError(f"{op}: field {name!r} is negative ({value})")
    if op == "memory":
        regions = msg["regions"]
        if not 0 < len(regions) <= MAX_FDS:
            raise HandoffError(f"memory: {len(regions)} regions (1 to {MAX_FDS})")
        for r in regions:
            if (not isinstance(r, list) or len(r) != len(REGION_FIELDS)
                    or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                               for v in r)):
                raise HandoffError(f"memory: region {r!r} is not {len(REGION_FIELDS)} "
                                   "non-negative integers")
    if op == "bye":
        for r in msg["rings"]:
            if (not isinstance(r, list) or len(r) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool)
                               and 0 <= v <= 0xFFFFFFFF for v in r)):
                raise HandoffError(f"bye: ring {r!r} is not [index, base] (32-bit)")
    return msg


def encode(msg: dict[str, Any], fds: Sequence[int] = ()) -> bytes:
    """The bytes of ``msg`` (to send with ``fds``); HandoffError if either
    is wrong."""
    _check(msg)
    if len(fds) != fds_wanted(msg):
        raise HandoffError(f"{msg['op']}: {len(fds)} fds, needs {fds_wanted(msg)}")
    data = json.dumps(msg, separators=(",", ":")).encode()
    if len(data) > MAX_MESSAGE:
        raise HandoffError(f"{msg['op']}: {len(data)} bytes, more than {MAX_MESSAGE}")
    return data


def decode(data: bytes, fds: Sequence[int]) -> dict[str, Any]:
    """The message in ``data`` received with ``fds``. HandoffError (and the
    fds closed) when it is malformed or carries the wrong number of fds."""
    try:
        try:
            msg = _check(json.loads(data))
        except (ValueError, UnicodeDecodeError) as e:
            if isinstance(e, HandoffError):
                raise
            raise HandoffError(f"handoff message is not JSON: {e}") from None
        if len(fds) != fds_wanted(msg):
            raise HandoffError(f"{msg['op']}: came with {len(fds)} fds, needs {fds_wanted(msg)}")
    except HandoffError:
        close_fds(fds)
        raise
    return msg


def close_fds(fds: Sequence[int]) -> None:
    """Closes each fd, ignoring those already closed."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
