"""Batches: the packets of one receive, worked on all at once.

``link.receive_batch()`` returns a :class:`Batch`. Its packets' payloads are
``packet.memory()[offsets[k]:offsets[k] + lengths[k]]``; numpy code reads and
writes them there, and every helper here (fields, checksums, hashes, encap)
is one C call for the whole batch. A batch owns its packets until it is
sent (``transmit``, ``split``) or freed (``free``); after that any use
raises :class:`BatchError`. ``lengths`` may be written: the new lengths are
checked and written back to the packets when the batch is sent.

Fields past a packet's end: getters give 0 for a packet shorter than the
field (``lengths >= offset + size`` is the mask of packets that have it),
setters leave such a packet alone. ``bytes`` zero-fills the missing tail.
"""

from __future__ import annotations

import sys

import numpy as np

from snabbpy.core import packet
from snabbpy.core.mactable import MacTable, check_value
from snabbpy.core.native import ffi, lib

_U8, _U16, _U32 = np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32)
_I32, _I64 = np.dtype(np.int32), np.dtype(np.int64)
_BASE = packet.memory_base()


class BatchError(RuntimeError):
    """A batch was used after it was sent or freed, or asked for something
    impossible (a bad index, a length that does not fit)."""


_ARRAY = {"int64_t *": "int64_t[]", "int32_t *": "int32_t[]", "uint8_t *": "uint8_t[]",
          "uint16_t *": "uint16_t[]", "uint32_t *": "uint32_t[]"}


def _ptr(ctype: str, array: np.ndarray):
    # from_buffer is ~8 times cheaper than array.ctypes.data
    return ffi.from_buffer(_ARRAY[ctype], array)


class _Buffers:
    """The arrays of one batch, kept for reuse once the batch ended."""

    __slots__ = ("pk", "offs", "lens", "was", "op", "lp", "wp", "refs_offs", "refs_lens")

    def __init__(self, size: int) -> None:
        self.pk = ffi.new("struct packet *[]", max(size, 1))
        self.offs = np.empty(size, _I64)
        self.lens = np.empty(size, _I32)
        self.was = np.empty(size, _I32)
        self.op = ffi.from_buffer("int64_t[]", self.offs)
        self.lp = ffi.from_buffer("int32_t[]", self.lens)
        self.wp = ffi.from_buffer("int32_t[]", self.was)
        # references while in use: ours, the cdata's, one batch slice's, getrefcount's
        self.refs_offs = sys.getrefcount(self.offs) + 1
        self.refs_lens = sys.getrefcount(self.lens) + 1


#: Ended batches' arrays by size: allocating them cost more than the rest
#: of a receive.
_POOL: dict[int, list[_Buffers]] = {}
_POOL_DEPTH = 4


class Batch:
    """Packets received together, with ``offsets`` (int64, payload start in
    ``packet.memory()``) and ``lengths`` (int32, writable) as numpy arrays."""

    __slots__ = ("_pk", "_n", "offsets", "lengths", "_live", "_op", "_la", "_lp", "_buf", "_wp")

    def __init__(self, pk, n: int, offsets: np.ndarray, lengths: np.ndarray,
                 op=None, lp=None) -> None:
        self._pk = pk
        self._n = n
        self.offsets = offsets
        self.lengths = lengths
        self._live = True
        # C pointers to the arrays, kept while the arrays are the same
        self._op = op if op is not None else ffi.from_buffer("int64_t[]", offsets)
        self._la = lengths
        self._lp = lp if lp is not None else ffi.from_buffer("int32_t[]", lengths)
        self._buf: _Buffers | None = None
        # the lengths as received (only changed ones are written back), or
        # NULL: check and write every length
        self._wp = ffi.NULL

    # -- making batches ----------------------------------------------------

    @classmethod
    def receive(cls, link, max_packets: int) -> Batch:
        """Takes up to ``max_packets`` packets from ``link``."""
        if max_packets < 0:
            raise ValueError(f"max_packets must be >= 0, not {max_packets}")
        pool = _POOL.get(max_packets)
        buf = pool.pop() if pool else _Buffers(max_packets)
        n = lib.batch_receive(link.c, buf.pk, max_packets, _BASE, buf.op, buf.lp, buf.wp)
        b = cls(buf.pk, n, buf.offs[:n], buf.lens[:n], buf.op, buf.lp)
        b._buf, b._wp = buf, buf.wp
        return b

    @classmethod
    def of(cls, packets) -> Batch:
        """A batch owning the given packets (which the caller gives up)."""
        packets = list(packets)
        n = len(packets)
        pk = ffi.new("struct packet *[]", packets or 1)
        offs, lens = np.empty(n, np.int64), np.empty(n, np.int32)
        lib.batch_refresh(pk, n, packet.memory_base(), _ptr("int64_t *", offs),
                          _ptr("int32_t *", lens))
        return cls(pk, n, offs, lens)

    # -- state -------------------------------------------------------------

    def _check(self) -> None:
        if not self._live:
            raise BatchError("batch used after it was sent or freed")
        if self.lengths is self._la:
            return
        # the caller replaced the lengths array: take it if it fits
        lengths = np.asarray(self.lengths)
        if lengths.shape != (self._n,):
            raise BatchError(f"batch lengths must stay an array of {self._n}, "
                             f"not of shape {lengths.shape}")
        self.lengths = self._la = np.ascontiguousarray(lengths, dtype=_I32)
        self._lp = ffi.from_buffer("int32_t[]", self._la)

    def _lens(self):
        return self._lp

    def _offs(self):
        return self._op

    def _end(self) -> None:
        self._live = False
        self._n = 0
        buf, self._buf = self._buf, None
        # Give the arrays back for the next receive, unless someone else
        # still holds them (or a view of them): then they are theirs.
        if (buf is not None and self._la is self.lengths and self._lp is buf.lp
                and sys.getrefcount(self.offsets) == 2 and sys.getrefcount(self.lengths) == 3
                and sys.getrefcount(buf.offs) == buf.refs_offs
                and sys.getrefcount(buf.lens) == buf.refs_lens):
            pool = _POOL.setdefault(len(buf.offs), [])
            if len(pool) < _POOL_DEPTH:
                self.offsets = self.lengths = self._la = None
                pool.append(buf)

    def _shrink(self) -> None:
        # slices start where the arrays did: the C pointers stay valid
        self.offsets = self.offsets[:self._n]
        self.lengths = self._la = self._la[:self._n]

    def _mask(self, mask) -> np.ndarray:
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            m = m.astype(np.bool_)
        if m.shape != (self._n,):
            raise BatchError(f"mask of shape {m.shape} for a batch of {self._n} packets")
        return np.ascontiguousarray(m)

    def _failed(self, r: int, what: str) -> None:
        k = -r - 1
        raise BatchError(f"{what}: packet {k} (length {int(self.lengths[k])}) does not allow it")

    def __len__(self) -> int:
        return self._n

    def __bool__(self) -> bool:
        return self._n > 0

    def __iter__(self):
        """The packets (lengths written back first), for per-packet code as
        with the old list. A loop that sends or frees each packet itself
        has consumed the batch: do not send or free the batch as well."""
        self._check()
        self.writeback()
        pk = self._pk
        return (pk[k] for k in range(self._n))

    def __getitem__(self, k: int):
        """Packet ``k`` (still owned by the batch)."""
        self._check()
        if not -self._n <= k < self._n:
            raise IndexError(f"packet {k} of a batch of {self._n}")
        return self._pk[k % self._n]

    def __repr__(self) -> str:
        state = "" if self._live else " (done)"
        return f"<Batch of {self._n} packets{state}>"

    @property
    def alive(self) -> bool:
        """True until the batch is sent or freed."""
        return self._live

    def writeback(self) -> None:
        """Writes ``lengths`` back to the packets now (sending does it)."""
        self._check()
        r = lib.batch_writeback(self._pk, self._n, self._lens(), self._wp)
        if r < 0:
            self._failed(r, "length write-back")
        self._received()

    def _received(self) -> None:
        # the packets' lengths are the batch's now
        if self._wp != ffi.NULL:
            self._buf.was[:self._n] = self._la

    def refresh(self) -> None:
        """Re-reads offsets and lengths from the packets (after per-packet
        code changed them)."""
        self._check()
        lib.batch_refresh(self._pk, self._n, _BASE, self._offs(), self._lens())
        self._received()

    # -- ending a batch ------------------------------------------------------

    def transmit(self, link) -> None:
        """Sends every packet on ``link`` (a full link drops and counts)."""
        self._check()
        r = lib.batch_transmit(link.c, self._pk, self._n, self._lens(), self._wp)
        if r < 0:
            self._failed(r, "transmit")
        self._end()

    def free(self, mask=None) -> None:
        """Frees every packet, or (with ``mask``) those where it is true,
        keeping the others in this batch in order."""
        self._check()
        if mask is None:
            lib.batch_free(self._pk, self._n)
            self._end()
            return
        m = self._mask(mask)
        self._n = lib.batch_free_mask(self._pk, self._n, _ptr("uint8_t *", m),
                                      self._offs(), self._lens())
        self._wp = ffi.NULL
        self._shrink()

    def select(self, mask) -> Batch:
        """Moves the packets where ``mask`` is true into a new batch (in
        order); this batch keeps the others."""
        self._check()
        m = self._mask(mask)
        count = int(np.count_nonzero(m))
        out = ffi.new("struct packet *[]", max(count, 1))
        oo, ol = np.empty(count, np.int64), np.empty(count, np.int32)
        lib.batch_select(self._pk, self._n, _ptr("uint8_t *", m), self._offs(), self._lens(),
                         out, _ptr("int64_t *", oo), _ptr("int32_t *", ol))
        self._n -= count
        self._wp = ffi.NULL
        self._shrink()
        return Batch(out, count, oo, ol)

    def split(self, index, links) -> None:
        """Sends packet k on ``links[index[k]]``; index -1 frees it."""
        self._check()
        idx = np.ascontiguousarray(index, dtype=np.int64)
        if idx.shape != (self._n,):
            raise BatchError(f"index of shape {idx.shape} for a batch of {self._n} packets")
        cl = ffi.new("struct link *[]", [l.c for l in links] or 1)
        r = lib.batch_split(self._pk, self._n, _ptr("int64_t *", idx), cl, len(links),
                            self._lens(), self._wp)
        if r < 0:
            k = -r - 1
            if not -1 <= idx[k] < len(links):
                raise BatchError(f"split: packet {k} has index {int(idx[k])}, "
                                 f"not -1..{len(links) - 1}")
            self._failed(r, "split")
        self._end()

    # -- fields --------------------------------------------------------------

    def _field(self, off: int, size: int) -> None:
        self._check()
        if not 0 <= off <= packet.PAYLOAD_SIZE - size:
            raise ValueError(f"field at {off} of {size} bytes is outside any payload")

    def u8(self, off: int) -> np.ndarray:
        """The byte at ``off`` of each packet (0 where too short)."""
        self._field(off, 1)
        out = np.empty(self._n, _U8)
        lib.batch_get_u8(packet.memory_pointer(), self._offs(), self._lens(), self._n, off,
                         _ptr("uint8_t *", out))
        return out

    def u16be(self, off: int) -> np.ndarray:
        """The big-endian 16-bit word at ``off`` of each packet (0 where too short)."""
        self._field(off, 2)
        out = np.empty(self._n, _U16)
        lib.batch_get_u16be(packet.memory_pointer(), self._offs(), self._lens(), self._n, off,
                            _ptr("uint16_t *", out))
        return out

    def u32be(self, off: int) -> np.ndarray:
        """The big-endian 32-bit word at ``off`` of each packet (0 where too short)."""
        self._field(off, 4)
        out = np.empty(self._n, _U32)
        lib.batch_get_u32be(packet.memory_pointer(), self._offs(), self._lens(), self._n, off,
                            _ptr("uint32_t *", out))
        return out

    def _values(self, values, dtype: np.dtype) -> np.ndarray:
        v = np.asarray(values)
        if v.dtype != dtype:
            limit = (1 << (8 * dtype.itemsize)) - 1
            if v.size and (v.min() < 0 or v.max() > limit):
                raise ValueError(f"values outside 0..{limit} for a {dtype} field")
            v = v.astype(dtype)
        return np.ascontiguousarray(np.broadcast_to(v, (self._n,)))

    def set_u8(self, off: int, values) -> None:
        """Writes ``values`` (one per packet, or one for all) at ``off``;
        packets too short are left alone."""
        self._field(off, 1)
        v = self._values(values, _U8)
        lib.batch_set_u8(packet.memory_pointer(), self._offs(), self._lens(), self._n, off,
                         _ptr("uint8_t *", v))

    def set_u16be(self, off: int, values) -> None:
        """Writes big-endian 16-bit ``values`` at ``off`` (short packets untouched)."""
        self._field(off, 2)
        v = self._values(values, _U16)
        lib.batch_set_u16be(packet.memory_pointer(), self._offs(), self._lens(), self._n, off,
                            _ptr("uint16_t *", v))

    def set_u32be(self, off: int, values) -> None:
        """Writes big-endian 32-bit ``values`` at ``off`` (short packets untouched)."""
        self._field(off, 4)
        v = self._values(values, _U32)
        lib.batch_set_u32be(packet.memory_pointer(), self._offs(), self._lens(), self._n, off,
                            _ptr("uint32_t *", v))

    def bytes(self, off: int, n: int) -> np.ndarray:
        """Bytes ``off .. off+n`` of each packet as an (n_packets, n) uint8
        array (a copy; zeros past a packet's end)."""
        self._field(off, n)
        out = np.empty((self._n, n), _U8)
        lib.batch_get_bytes(packet.memory_pointer(), self._offs(), self._lens(), self._n, off, n,
                            _ptr("uint8_t *", out))
        return out

    def set_bytes(self, off: int, values) -> None:
        """Writes rows of ``values`` ((n_packets, n), or one row of n for
        all) at ``off``; packets shorter than ``off + n`` are left alone."""
        v = np.asarray(values, dtype=_U8)
        if v.ndim == 1:
            stride, n = 0, v.shape[0]
        elif v.ndim == 2 and v.shape[0] == self._n:
            stride, n = v.shape[1], v.shape[1]
        else:
            raise ValueError(f"set_bytes wants (n,) or ({self._n}, n) values, not {v.shape}")
        self._field(off, n)
        v = np.ascontiguousarray(v)
        lib.batch_set_bytes(packet.memory_pointer(), self._offs(), self._lens(), self._n, off, n,
                            _ptr("uint8_t *", v), stride)

    # -- checksums, hashes ---------------------------------------------------

    def _done(self) -> np.ndarray:
        return np.empty(self._n, np.bool_)

    def ipv4_checksum(self, l3: int = 14) -> np.ndarray:
        """Computes and writes the IPv4 header checksum of the header at
        ``l3``; returns the mask of packets that had a whole IPv4 header."""
        self._field(l3, 20)
        done = self._done()
        lib.batch_ipv4_checksum(packet.memory_pointer(), self._offs(), self._lens(), self._n, l3,
                                _ptr("uint8_t *", done))
        return done

    def l4_checksum(self, l3: int = 14) -> np.ndarray:
        """Computes and writes the TCP or UDP checksum (with the IPv4
        pseudo-header) of unfragmented IPv4 packets whose header is at
        ``l3`` and whose total length fits; returns the mask of those."""
        self._field(l3, 20)
        done = self._done()
        lib.batch_l4_checksum(packet.memory_pointer(), self._offs(), self._lens(), self._n, l3,
                              _ptr("uint8_t *", done))
        return done

    def checksum_adjust(self, at: int, old, new) -> np.ndarray:
        """Incremental update (RFC 1624) of the checksum at ``at`` for a
        16-bit word that changed from ``old`` to ``new`` (per packet);
        returns the mask of packets long enough to hold the checksum."""
        self._field(at, 2)
        o, w = self._values(old, _U16), self._values(new, _U16)
        done = self._done()
        lib.batch_checksum_adjust(packet.memory_pointer(), self._offs(), self._lens(), self._n,
                                  at, _ptr("uint16_t *", o), _ptr("uint16_t *", w),
                                  _ptr("uint8_t *", done))
        return done

    def flow_hash(self, l3: int = 14) -> np.ndarray:
        """A 32-bit hash of each packet's (addresses, ports, protocol) for
        IPv4 or IPv6 at ``l3``, the same for both directions of a flow
        (ports count only for unfragmented TCP, UDP and SCTP); 0 if not IP."""
        self._field(l3, 0)
        out = np.empty(self._n, _U32)
        lib.batch_flow_hash(packet.memory_pointer(), self._offs(), self._lens(), self._n, l3,
                            _ptr("uint32_t *", out))
        return out

    # -- copies and MAC tables -------------------------------------------------

    def clone(self, mask=None) -> Batch:
        """A new batch of copies of the packets (those where ``mask`` is
        true), in order: for flooding a frame to several outputs. This batch
        keeps its packets; lengths are written back first."""
        self.writeback()
        if mask is None:
            m, count = ffi.NULL, self._n
        else:
            marr = self._mask(mask)
            m, count = _ptr("uint8_t *", marr), int(np.count_nonzero(marr))
        out = ffi.new("struct packet *[]", max(count, 1))
        oo, ol = np.empty(count, np.int64), np.empty(count, np.int32)
        got = lib.batch_clone(self._pk, self._n, m, _BASE, out, _ptr("int64_t *", oo),
                              _ptr("int32_t *", ol))
        if got < 0:
            raise MemoryError(f"packet memory exhausted cloning {count} packets")
        return Batch(out, count, oo, ol)

    def lookup_mac(self, table, at: int = 0, missing: int = -1, group: int | None = None,
                   min_length: int = 0, short: int | None = None) -> np.ndarray:
        """The value in ``table`` (a :class:`~snabbpy.core.mactable.MacTable`)
        of the MAC at byte ``at`` of each packet (int32): ``missing`` where
        unknown; ``short`` (default: ``missing``) where the packet is
        shorter than ``at + 6`` or ``min_length``; with ``group``, that for
        a group address (multicast or broadcast, which a switch floods)
        without a lookup."""
        kp, vp, tmask, _ = _table(table)
        self._field(at, 6)
        need = _min_length(min_length)
        miss = check_value(missing)
        too_short = miss if short is None else check_value(short)
        g = 0 if group is None else check_value(group)
        out = np.empty(self._n, _I32)
        lib.batch_mac_lookup(packet.memory_pointer(), self._offs(), self._lens(), self._n, at,
                             need, kp, vp, tmask, miss, too_short, group is not None, g,
                             _ptr("int32_t *", out))
        return out

    def learn_mac(self, table, value: int, at: int = 6, mask=None, min_length: int = 0) -> None:
        """Learns the MAC at byte ``at`` of each packet (those where ``mask``
        is true, with ``at + 6`` and ``min_length`` bytes) as ``value`` in
        ``table``, in order."""
        kp, vp, tmask, cp = _table(table)
        self._field(at, 6)
        need = _min_length(min_length)
        v = check_value(value)
        m = ffi.NULL if mask is None else _ptr("uint8_t *", self._mask(mask))
        lib.batch_mac_learn(packet.memory_pointer(), self._offs(), self._lens(), self._n, at,
                            need, m, kp, vp, tmask, v, cp)

    def switch_mac(self, table, port: int, to, out=None, counts=None) -> np.ndarray:
        """A learning switch's step for Ethernet frames that came in on
        ``port``, in one C call. Each frame takes an entry of ``to`` (int64):
        ``to[v]`` when its destination MAC (byte 0) has the value ``v`` in
        ``table`` (0 <= v < len(to) - 2), ``to[-1]`` when it is unknown or
        a group address, ``to[-2]`` when the frame is shorter than 14
        bytes. Then the source MACs (byte 6) of the others are learnt as
        ``port``, in order, so every lookup sees the table as it was before
        the batch. Returns the entries taken (int64), in ``out[:len(self)]``
        when given; ``counts`` (int64, one per entry of ``to``), when given,
        is increased by the number of frames that took each entry. A table
        value outside ``to`` raises BatchError, and nothing is learnt."""
        kp, vp, tmask, cp = _table(table)
        self._check()
        v = check_value(port)
        t = _int64s(to, "to")
        if not 2 <= len(t) < 1 << 31:
            raise ValueError(f"to needs 2 entries or more (short, unknown), not {len(t)}")
        res = np.empty(self._n, _I64) if out is None else _int64s(out, "out", self._n)
        cnt = ffi.NULL
        if counts is not None:
            c = _int64s(counts, "counts", len(t))
            if len(counts) != len(t) or np.may_share_memory(c, res):
                raise ValueError(f"counts must be {len(t)} int64s (one per entry of to), "
                                 f"apart from out")
            cnt = _ptr("int64_t *", c)
        r = lib.batch_mac_switch(packet.memory_pointer(), self._offs(), self._lens(), self._n,
                                 kp, vp, tmask, cp, v, _ptr("int64_t *", t), len(t),
                                 _ptr("int64_t *", res), cnt)
        if r < 0:
            raise BatchError(f"switch_mac: packet {-r - 1}'s destination MAC has a table "
                             f"value outside 0..{len(t) - 3} (the entries of to)")
        return res

    # -- encapsulation ---------------------------------------------------------

    def prepend(self, data) -> None:
        """Adds ``data`` (bytes) in front of every packet (an encapsulation
        header, a VLAN tag after shifting the MACs)."""
        self.writeback()
        buf = bytes(data)
        r = lib.batch_prepend(self._pk, self._n, buf, len(buf))
        if r < 0:
            self._failed(r, f"prepend of {len(buf)} bytes")
        self.refresh()

    def strip(self, n: int) -> None:
        """Removes ``n`` bytes from the front of every packet."""
        self.writeback()
        if n < 0:
            raise ValueError(f"cannot strip {n} bytes")
        r = lib.batch_strip(self._pk, self._n, n)
        if r < 0:
            self._failed(r, f"strip of {n} bytes")
        self.refresh()


def _table(table):
    if not isinstance(table, MacTable):
        raise TypeError(f"a MacTable is needed, not {type(table).__name__}")
    return table._c()


def _min_length(n) -> int:
    if not isinstance(n, (int, np.integer)) or not 0 <= n <= packet.PAYLOAD_SIZE:
        raise ValueError(f"min_length must be 0..{packet.PAYLOAD_SIZE}, not {n!r}")
    return int(n)


def _int64s(a, name: str, n: int | None = None) -> np.ndarray:
    """``a`` (integers) as a C-contiguous 1-D int64 array; with ``n``, an
    array given to be written into (so never a copy), of which the first
    ``n`` are used."""
    if n is None:
        a = np.asarray(a)
        if a.dtype != _I64 and a.size and (a.dtype.kind not in "iu" or (
                a.min() < -(1 << 63) or a.max() >= 1 << 63)):
            raise ValueError(f"{name} must be int64 numbers, not {a.dtype}")
        if a.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array, not of shape {a.shape}")
        return np.ascontiguousarray(a, dtype=_I64)
    if not isinstance(a, np.ndarray) or a.dtype != _I64 or a.ndim != 1 \
            or not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name} must be a writable 1-D contiguous int64 array")
    if len(a) < n:
        raise ValueError(f"{name} has {len(a)} entries for a batch of {n} packets")
    return a[:n]
