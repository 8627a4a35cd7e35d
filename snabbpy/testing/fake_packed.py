"""The driver's view of one packed virtqueue, written by hand (tests).

``FakePackedQueue`` is the packed twin of ``fake_guest.FakeQueue``, with
the same chain interface (``add_chain``, ``take_used``, ``post_tx``,
``post_rx``), so a test written for a split ring runs on a packed one:
``desc`` is the descriptor ring, ``avail`` the driver area and ``used`` the
device area (the three addresses SET_VRING_ADDR carries for a packed ring).
Chains are lists of (guest address, length, flags) and are written as
given (a hostile test may leave NEXT on the last one, or set INDIRECT).
"""

from __future__ import annotations

import struct

from snabbpy.apps.vguest.vhost_user_transport import PACKED_START
from snabbpy.core.native import lib
from snabbpy.lib.virtio.constants import DescFlag
from snabbpy.testing.fake_guest import USER_OFFSET, FakeMemory, FakeQueue

_DESC = struct.Struct("<QIHH")
AVAIL, USED, WRAP = lib.PK_DESC_F_AVAIL, lib.PK_DESC_F_USED, lib.PK_WRAP


def advance(pos: int, n: int, size: int) -> int:
    """Position ``n`` slots after ``pos`` (slot | wrap counter << 15)."""
    slot, wrap = (pos & (WRAP - 1)) + n, pos & WRAP
    while slot >= size:
        slot, wrap = slot - size, wrap ^ WRAP
    return slot | wrap


class FakePackedQueue(FakeQueue):
    """One packed virtqueue of ``size`` slots in ``mem``, driver side."""

    def __init__(self, mem: FakeMemory, size: int, event_idx: bool = False) -> None:
        self.mem, self.size = mem, size
        self.desc = mem.alloc(16 * size, 16)
        self.avail = mem.alloc(4, 4)   # driver area: our event suppression
        self.used = mem.alloc(4, 4)    # device area: the device's
        mem.write(self.avail, bytes(4))
        self.avail_pos = self.used_pos = PACKED_START & 0xFFFF
        self.next_id = 0
        self.slots: dict[int, int] = {}  # buffer id -> ring slots of its chain

    def start(self, q, stats, flags: int = 0, last_avail: int = PACKED_START) -> int:
        """Starts the device queue ``q`` (a ``struct pd_queue *``) on this ring."""
        return lib.pd_queue_start(q, self.mem.c, stats, self.size, self.desc + USER_OFFSET,
                                  self.avail + USER_OFFSET, self.used + USER_OFFSET,
                                  last_avail, flags)

    def add_chain(self, chain: list[tuple[int, int, int]]) -> int:
        """Writes ``chain`` into the next slots (NEXT on all but the last,
        one buffer id), the first slot's flags last; returns the id."""
        buf_id, self.next_id = self.next_id, (self.next_id + 1) % self.size
        first = self.avail_pos
        writes = []
        for k, (addr, length, flags) in enumerate(chain):
            pos = advance(first, k, self.size)
            mark = AVAIL if pos & WRAP else USED
            link = 0 if k == len(chain) - 1 else DescFlag.NEXT
            writes.append((pos, _DESC.pack(addr, length, buf_id, flags | link | mark)))
        for pos, data in writes[1:] + writes[:1]:
            self.mem.write(self.desc + 16 * (pos & (WRAP - 1)), data)
        self.slots[buf_id] = len(chain)
        self.avail_pos = advance(first, len(chain), self.size)
        return buf_id

    def take_used(self) -> list[tuple[int, int]]:
        """The (id, len) used descriptors written since the last call."""
        out = []
        while True:
            at = self.desc + 16 * (self.used_pos & (WRAP - 1))
            _, length, buf_id, flags = _DESC.unpack(self.mem.read(at, 16))
            wrap = bool(self.used_pos & WRAP)
            if bool(flags & AVAIL) != wrap or bool(flags & USED) != wrap:
                return out
            out.append((buf_id, length))
            self.used_pos = advance(self.used_pos, self.slots.pop(buf_id, 1), self.size)
