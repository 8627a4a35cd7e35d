"""pcapng files (Wireshark's default format since 1.8), with no I/O.

A file is a sequence of blocks, each ``type u32, total_length u32, body,
total_length u32`` with the body padded to 4 bytes. A section header block
(type ``0a0d0d0a``, byte-order magic ``1a2b3c4d``) starts each section and
says its byte order; interface description blocks (type 1: link type u16,
reserved u16, snaplen u32, options) are numbered from 0 within a section;
enhanced packet blocks (type 6: interface u32, timestamp high and low u32,
captured and original length u32, data, options), simple packet blocks
(type 3: original length, data; interface 0, no timestamp) and the obsolete
packet block (type 2) carry packets. Other blocks are skipped. Options are
``code u16, length u16, value`` padded to 4; code 0 ends them.

An interface's timestamps count units of ``if_tsresol`` (option 9: one
byte, high bit clear 10^-n s, set 2^-n s; default 10^-6) from an
``if_tsoffset`` (option 14, seconds, i64). This module parses section
headers and interface descriptions and builds both; the packet blocks are
read and written in C (``snabbpy/apps/pcap/pcap.c``). Faults are
``pcap.PcapError`` naming the file, block and offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from snabbpy.lib.pcap import PcapError

SHB_TYPE = 0x0A0D0D0A
IDB_TYPE = 1
EPB_TYPE = 6
SPB_TYPE = 3
OPB_TYPE = 2
BYTE_ORDER_MAGIC = 0x1A2B3C4D
MAGIC = struct.pack("<I", SHB_TYPE)
OPT_END, OPT_TSRESOL, OPT_FCSLEN, OPT_TSOFFSET = 0, 9, 13, 14
#: Why the C reader refused a block (pcap.h PCAPNG_BAD_*).
BAD_REASONS = {
    1: "bad block total length {length}",
    2: "trailing block length differs from the leading one ({length})",
    3: "packet on an interface no interface description block describes",
    4: "captured length exceeds the block ({length} bytes)",
}


@dataclass(frozen=True)
class Interface:
    """One interface description: link type, snapshot length, timestamp
    units per second and offset, and its other options as read (numbers
    among them in little-endian form: see NUMERIC_OPTIONS)."""

    linktype: int = 1
    snaplen: int = 0
    units: int = 1_000_000
    tsoffset: int = 0
    options: tuple[tuple[int, bytes], ...] = field(default=())

    @property
    def tsresol(self) -> int | None:
        """The if_tsresol byte for ``units`` (None: the default 10^-6)."""
        if self.units == 1_000_000:
            return None
        for n in range(20):
            if 10**n == self.units:
                return n
        for n in range(64):
            if 1 << n == self.units:
                return 0x80 | n
        raise ValueError(f"no if_tsresol for {self.units} units per second")


#: Interface options holding numbers, and their struct format: kept in
#: little-endian form in ``Interface.options`` and written in the file's.
NUMERIC_OPTIONS = {8: "Q", 10: "i", 16: "Q", 17: "Q"}


def _reorder(options, src: str, dst: str) -> tuple[tuple[int, bytes], ...]:
    out = []
    for code, value in options:
        fmt = NUMERIC_OPTIONS.get(code)
        if fmt and src != dst and len(value) == struct.calcsize(fmt):
            value = struct.pack(dst + fmt, *struct.unpack(src + fmt, value))
        out.append((code, value))
    return tuple(out)


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


def parse_options(data: bytes, order: str, where: str) -> list[tuple[int, bytes]]:
    """The (code, value) options of a block's option area."""
    out, pos = [], 0
    while pos + 4 <= len(data):
        code, length = struct.unpack_from(order + "HH", data, pos)
        if code == OPT_END:
            break
        if pos + 4 + length > len(data):
            raise PcapError(f"{where}: option {code} runs past the block")
        out.append((code, bytes(data[pos + 4:pos + 4 + length])))
        pos += 4 + length + _pad4(length)
    return out


def build_options(options, order: str) -> bytes:
    """An option area: each option padded, then opt_endofopt (nothing when empty)."""
    if not options:
        return b""
    parts = []
    for code, value in options:
        parts += [struct.pack(order + "HH", code, len(value)), value, b"\0" * _pad4(len(value))]
    return b"".join(parts) + struct.pack(order + "HH", 0, 0)


def block(btype: int, body: bytes, order: str) -> bytes:
    """A whole block: type, total length, body padded to 4, total length."""
    body += b"\0" * _pad4(len(body))
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def parse_section_header(data: bytes, where: str) -> tuple[str, int]:
    """The byte order (``"<"``/``">"``) and total length of the section
    header block at the start of ``data`` (at least 12 bytes)."""
    if len(data) < 12:
        raise PcapError(f"{where}: truncated section header block ({len(data)} bytes)")
    for order in "<>":
        if struct.unpack_from(order + "I", data, 8)[0] == BYTE_ORDER_MAGIC:
            break
    else:
        raise PcapError(f"{where}: bad byte-order magic 0x{bytes(data[8:12]).hex()}")
    (length,) = struct.unpack_from(order + "I", data, 4)
    if length < 28 or length % 4:
        raise PcapError(f"{where}: bad section header block length {length}")
    if len(data) >= 14:
        (major,) = struct.unpack_from(order + "H", data, 12)
        if major != 1:
            raise PcapError(f"{where}: unsupported pcapng version {major} (expected 1.x)")
    return order, length


def check_trailer(data: bytes, order: str, length: int, where: str) -> None:
    """Checks a whole block's trailing total length."""
    if struct.unpack_from(order + "I", data, length - 4)[0] != length:
        raise PcapError(f"{where}: trailing block length differs from the leading one ({length})")


def parse_interface(data: bytes, order: str, where: str) -> Interface:
    """An interface description block (whole, trailer checked)."""
    (length,) = struct.unpack_from(order + "I", data, 4)
    if length < 20:
        raise PcapError(f"{where}: bad interface description block length {length}")
    linktype, _, snaplen = struct.unpack_from(order + "HHI", data, 8)
    options = parse_options(data[16:length - 4], order, where)
    units, offset = 1_000_000, 0
    for code, value in options:
        if code == OPT_TSRESOL and value:
            r = value[0]
            units = (1 << (r & 0x7F)) if r & 0x80 else 10 ** r
            if (r & 0x7F) > (63 if r & 0x80 else 19):
                raise PcapError(f"{where}: if_tsresol 0x{r:02x} out of range")
        elif code == OPT_TSOFFSET and len(value) == 8:
            (offset,) = struct.unpack(order + "q", value)
    kept = _reorder([(c, v) for c, v in options if c not in (OPT_TSRESOL, OPT_TSOFFSET)],
                    order, "<")
    return Interface(linktype, snaplen, units, offset, kept)


def build_section_header(order: str = "<") -> bytes:
    """A section header block: version 1.0, length unknown (-1), no options."""
    return block(SHB_TYPE, struct.pack(order + "IHHq", BYTE_ORDER_MAGIC, 1, 0, -1), order)


def build_interface(i: Interface, order: str = "<") -> bytes:
    """An interface description block: ``i.options`` as they are, then
    if_tsresol and if_tsoffset from ``i.units`` and ``i.tsoffset``."""
    options = list(_reorder(i.options, "<", order))
    if i.tsresol is not None:
        options.append((OPT_TSRESOL, bytes([i.tsresol])))
    if i.tsoffset:
        options.append((OPT_TSOFFSET, struct.pack(order + "q", i.tsoffset)))
    return block(IDB_TYPE, struct.pack(order + "HHI", i.linktype, 0, i.snaplen)
                 + build_options(options, order), order)
