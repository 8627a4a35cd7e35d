"""MAC tables: 48-bit MAC addresses to int32 values (a port, an index),
looked up and learnt for a whole batch in one C call.

    table = MacTable(4096)
    to = batch.lookup_mac(table, at=0)       # the destination MACs' ports, -1 unknown
    batch.learn_mac(table, port, at=6)       # the source MACs are on this port

The table is open addressing with linear probing in numpy arrays, with
twice as many slots as MACs it may hold (``max_macs``); MACs beyond that
limit are not learnt (their lookups keep missing), so a flood of forged
source addresses cannot grow it. A MAC as a number is the six bytes read
big-endian (``0x020000000001`` is 02:00:00:00:00:01).
"""

from __future__ import annotations

import numpy as np

from snabbpy.core.native import ffi, lib

#: What a lookup gives for an unknown MAC (or a packet too short to hold one).
MISSING = -1
#: The most MACs a table may hold.
MAX_MACS = 1 << 24


class MacTable:
    """MAC -> int32 value, at most ``max_macs`` entries."""

    __slots__ = ("max_macs", "_keys", "_values", "_count", "_mask", "_kp", "_vp", "_cp")

    def __init__(self, max_macs: int) -> None:
        if not isinstance(max_macs, int) or not 1 <= max_macs <= MAX_MACS:
            raise ValueError(f"max_macs must be 1..{MAX_MACS}, not {max_macs!r}")
        self.max_macs = max_macs
        size = 1 << max(4, (2 * max_macs - 1).bit_length())
        # private: C trusts their sizes (a probe is bounded all the same)
        self._keys = np.zeros(size, np.uint64)
        self._values = np.zeros(size, np.int32)
        self._count = np.array([0, max_macs], np.int64)
        self._mask = size - 1
        self._kp = ffi.from_buffer("uint64_t[]", self._keys)
        self._vp = ffi.from_buffer("int32_t[]", self._values)
        self._cp = ffi.from_buffer("int64_t[]", self._count)

    def __len__(self) -> int:
        return int(self._count[0])

    def __repr__(self) -> str:
        return f"<MacTable {len(self)} of {self.max_macs} MACs>"

    @staticmethod
    def _macs(macs) -> np.ndarray:
        m = np.asarray(macs)
        if m.dtype != np.uint64:
            if m.dtype.kind not in "iu":
                raise TypeError(f"MACs must be integers, not {m.dtype}")
            if m.size and (m.min() < 0 or m.max() >= 1 << 48):
                raise ValueError("MACs must be 48-bit numbers (0 .. 2**48 - 1)")
            m = m.astype(np.uint64)
        elif m.size and m.max() >= 1 << 48:
            raise ValueError("MACs must be 48-bit numbers (0 .. 2**48 - 1)")
        return np.ascontiguousarray(m.reshape(-1))

    def lookup(self, macs) -> np.ndarray:
        """The value of each MAC of ``macs`` (integers), ``MISSING`` where
        unknown."""
        m = self._macs(macs)
        out = np.empty(len(m), np.int32)
        lib.mac_lookup(ffi.from_buffer("uint64_t[]", m), len(m), self._kp, self._vp, self._mask,
                       MISSING, ffi.from_buffer("int32_t[]", out))
        return out

    def learn(self, macs, value: int) -> None:
        """Sets every MAC of ``macs`` to ``value`` (new MACs, in order, while
        the table has room)."""
        m = self._macs(macs)
        lib.mac_learn(ffi.from_buffer("uint64_t[]", m), len(m), self._kp, self._vp, self._mask,
                      check_value(value), self._cp)

    def get(self, mac: int, default: int | None = None) -> int | None:
        """The value of one MAC, or ``default``."""
        v = int(self.lookup([mac])[0])
        return default if v == MISSING and mac not in self else v

    def __contains__(self, mac) -> bool:
        if not isinstance(mac, (int, np.integer)) or not 0 <= mac < 1 << 48:
            return False
        return bool(np.any(self._keys == np.uint64(int(mac) | 1 << 48)))

    # for Batch.lookup_mac / learn_mac
    def _c(self):
        return self._kp, self._vp, self._mask, self._cp


def check_value(value) -> int:
    """``value`` as an int32 table value (a ValueError names it if not)."""
    if not isinstance(value, (int, np.integer)) or not -(1 << 31) <= value < 1 << 31:
        raise ValueError(f"a MAC table value must be an int32, not {value!r}")
    return int(value)
