"""virtio-net control virtqueue commands (virtio 1.x section 5.1.6.5), no I/O.

A command is ``class u8, command u8, command-specific data`` read by the
device, then one ``ack u8`` the device writes: ``OK`` (0) or ``ERR`` (1).
The control queue is the last virtqueue: index ``2 * max_virtqueue_pairs``
with ``VIRTIO_NET_F_MQ``, else 2.

Both sides use this module: the driver (vguest) builds commands with
``encode`` / ``vq_pairs_set``; the device (VhostUser) turns the bytes it
read into a ``CtrlCommand`` with ``decode`` and answers it with
``answer_mq``, which checks a ``VQ_PAIRS_SET`` the way the spec asks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

OK, ERR = 0, 1

#: VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN / _MAX: the range of ``virtqueue_pairs``.
VQ_PAIRS_MIN, VQ_PAIRS_MAX = 1, 0x8000
#: The most queue pairs snabbpy's device (VhostUser) and driver (VGuest)
#: use: their per-queue counters are laid out for this many.
MAX_QUEUE_PAIRS = 8


def queue_pairs(value: int) -> int:
    """A ``queues:`` configuration value checked: 1 to ``MAX_QUEUE_PAIRS``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    if not 1 <= value <= MAX_QUEUE_PAIRS:
        raise ValueError(f"{value} queue pairs: 1 to {MAX_QUEUE_PAIRS}")
    return value


class CtrlClass(IntEnum):
    """``class`` of a control command."""

    RX = 0
    MAC = 1
    VLAN = 2
    ANNOUNCE = 3
    MQ = 4
    GUEST_OFFLOADS = 5


class MqCommand(IntEnum):
    """``command`` values of class ``MQ``."""

    VQ_PAIRS_SET = 0
    RSS_CONFIG = 1
    HASH_CONFIG = 2


class CtrlError(ValueError):
    """Bytes that are not a control command (too short)."""


@dataclass(frozen=True)
class CtrlCommand:
    """One control command: its class, command and data bytes (``size``:
    how many data bytes the command had, which ``data`` may fall short of
    when only the start of a long one was kept)."""

    cls: int
    command: int
    data: bytes
    size: int = -1

    def __post_init__(self) -> None:
        if self.size < 0:
            object.__setattr__(self, "size", len(self.data))

    @property
    def name(self) -> str:
        """``MQ.VQ_PAIRS_SET``, or numbers for what this module does not know."""
        try:
            cls = CtrlClass(self.cls)
        except ValueError:
            return f"class{self.cls}.command{self.command}"
        if cls == CtrlClass.MQ:
            try:
                return f"MQ.{MqCommand(self.command).name}"
            except ValueError:
                pass
        return f"{cls.name}.command{self.command}"


def control_queue_index(max_pairs: int, mq: bool) -> int:
    """Virtqueue index of the control queue."""
    return 2 * max_pairs if mq else 2


def encode(cls: int, command: int, data: bytes = b"") -> bytes:
    """The driver-readable bytes of a command."""
    return bytes((cls, command)) + data


def vq_pairs_set(pairs: int) -> bytes:
    """``MQ.VQ_PAIRS_SET``: use ``pairs`` queue pairs (le16)."""
    if not VQ_PAIRS_MIN <= pairs <= VQ_PAIRS_MAX:
        raise ValueError(f"virtqueue_pairs {pairs} is outside {VQ_PAIRS_MIN}..{VQ_PAIRS_MAX}")
    return encode(CtrlClass.MQ, MqCommand.VQ_PAIRS_SET, struct.pack("<H", pairs))


def decode(data: bytes, length: int | None = None) -> CtrlCommand:
    """The command in ``data`` (the readable bytes of a chain; ``length``,
    when larger, says the chain had more than were kept). CtrlError when
    it has no room for class and command."""
    length = len(data) if length is None else length
    if length < 2 or len(data) < 2:
        raise CtrlError(f"control command of {length} bytes: class and command need 2")
    return CtrlCommand(data[0], data[1], bytes(data[2:length]), length - 2)


@dataclass(frozen=True)
class Answer:
    """What the device answers: ``ack`` (OK or ERR), the queue pairs now
    in use when a VQ_PAIRS_SET succeeded (else None), and why not."""

    ack: int
    pairs: int | None = None
    why: str = ""


def answer_mq(cmd: CtrlCommand, max_pairs: int, mq_negotiated: bool) -> Answer:
    """The device's answer to ``cmd``: VQ_PAIRS_SET with 1..``max_pairs``
    pairs (and MQ negotiated) is OK; everything else is ERR, with a reason."""
    if cmd.cls != CtrlClass.MQ or cmd.command != MqCommand.VQ_PAIRS_SET:
        return Answer(ERR, why=f"{cmd.name}: not supported")
    if not mq_negotiated:
        return Answer(ERR, why="MQ.VQ_PAIRS_SET: VIRTIO_NET_F_MQ was not negotiated")
    if cmd.size != 2 or len(cmd.data) != 2:
        return Answer(ERR, why=f"MQ.VQ_PAIRS_SET: {cmd.size} data bytes, 2 expected")
    (pairs,) = struct.unpack("<H", cmd.data)
    if not VQ_PAIRS_MIN <= pairs <= max_pairs:
        return Answer(ERR, why=f"MQ.VQ_PAIRS_SET: {pairs} pairs, the device has "
                               f"{VQ_PAIRS_MIN}..{max_pairs}")
    return Answer(OK, pairs)
