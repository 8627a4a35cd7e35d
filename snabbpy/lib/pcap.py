"""Classic pcap files (the format of ``tcpdump -w``), with no I/O.

A file is a 24-byte global header followed by records, each a 16-byte
record header and ``incl_len`` bytes of packet::

    global header: magic u32, version_major u16, version_minor u16,
                   thiszone i32, sigfigs u32, snaplen u32, linktype u32
    record header: ts_sec u32, ts_frac u32, incl_len u32, orig_len u32

The magic says the byte order and the timestamp unit: ``a1b2c3d4`` is
microseconds, ``a1b23c4d`` nanoseconds, either written in the writer's own
byte order. The link-type field's low 16 bits are the link type; bit 26
set says bits 28-31 hold the FCS length in 16-bit words (the other bits
are reserved): the field is kept whole and written back unchanged. A
record may be longer than the header's snaplen (tcpdump reads it); only
one longer than libpcap's maximum, 262144, is an error. This module
parses and builds both headers from bytes; the
apps in ``snabbpy.apps.pcap`` do the reading and writing. Every fault is a
``PcapError`` saying where: ``in.pcap: record 17 at offset 123456:
truncated header (8 of 16 bytes)``. Records are numbered from 1, like
Wireshark's frames.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

MAGIC_MICROSECONDS = 0xA1B2C3D4
MAGIC_NANOSECONDS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
#: The first bytes of a pcapng file (its section header block type).
PCAPNG_MAGIC = bytes.fromhex("0a0d0d0a")
FILE_HEADER_SIZE = 24
RECORD_HEADER_SIZE = 16
#: libpcap's largest snapshot length: no sane record is longer.
MAXIMUM_SNAPLEN = 262144

_FILE_FIELDS = "IHHiIII"
_RECORD_FIELDS = "IIII"


class PcapError(ValueError):
    """A malformed pcap file; the message says which file, record and byte
    offset."""


@dataclass(frozen=True)
class FileHeader:
    """The global header: byte order (``"<"`` or ``">"``), timestamp unit,
    format version, snapshot length and link type."""

    byte_order: str = "<"
    nanosecond: bool = False
    version_major: int = 2
    version_minor: int = 4
    thiszone: int = 0
    sigfigs: int = 0
    snaplen: int = MAXIMUM_SNAPLEN
    linktype: int = LINKTYPE_ETHERNET

    @property
    def max_record_length(self) -> int:
        """The longest ``incl_len`` read at all: libpcap's maximum. A record
        longer than the header's snaplen but not than this is read, as
        tcpdump does (the reader counts it in ``over_snaplen``)."""
        return MAXIMUM_SNAPLEN

    @property
    def link_type(self) -> int:
        """The link type proper: the low 16 bits of the field."""
        return self.linktype & 0xFFFF

    @property
    def fcs_length(self) -> int | None:
        """Bytes of frame check sequence at the end of each packet when the
        field says (bit 26 set: bits 28-31 count 16-bit words), else None.
        The upper bits are kept as read and written back unchanged."""
        return 2 * (self.linktype >> 28) if self.linktype & 0x04000000 else None


#: Microseconds, snaplen 262144, Ethernet: what PcapWriter writes.
DEFAULT_FILE_HEADER = FileHeader()


@dataclass(frozen=True)
class RecordHeader:
    """One record header: timestamp (seconds and micro- or nanoseconds),
    bytes captured and original length on the wire."""

    ts_sec: int
    ts_frac: int
    incl_len: int
    orig_len: int


def _where(name: str, record: int | None, offset: int) -> str:
    at = f"record {record} at offset {offset}" if record is not None else f"offset {offset}"
    return f"{name}: {at}" if name else at


def parse_file_header(data: bytes, name: str = "") -> FileHeader:
    """Parses the first 24 bytes of a file; ``name`` prefixes errors."""
    prefix = f"{name}: " if name else ""
    if len(data) < 4:
        raise PcapError(f"{prefix}not a pcap file: truncated global header "
                        f"({len(data)} of {FILE_HEADER_SIZE} bytes)")
    for order in "<>":
        (magic,) = struct.unpack_from(order + "I", data)
        if magic in (MAGIC_MICROSECONDS, MAGIC_NANOSECONDS):
            break
    else:
        hint = " (a pcapng file: snabbpy.lib.pcapng and PcapReader read those)" \
            if data[:4] == PCAPNG_MAGIC else ""
        raise PcapError(f"{prefix}not a classic pcap file: unknown magic 0x{data[:4].hex()}{hint}")
    if len(data) < FILE_HEADER_SIZE:
        raise PcapError(f"{prefix}truncated global header ({len(data)} of "
                        f"{FILE_HEADER_SIZE} bytes)")
    _, major, minor, zone, sigfigs, snaplen, linktype = struct.unpack_from(
        order + _FILE_FIELDS, data)
    if major != 2:
        raise PcapError(f"{prefix}unsupported pcap version {major}.{minor} (expected 2.x)")
    return FileHeader(order, magic == MAGIC_NANOSECONDS, major, minor, zone, sigfigs,
                      snaplen, linktype)


def build_file_header(h: FileHeader = DEFAULT_FILE_HEADER) -> bytes:
    """The 24 bytes of a global header."""
    magic = MAGIC_NANOSECONDS if h.nanosecond else MAGIC_MICROSECONDS
    return struct.pack(h.byte_order + _FILE_FIELDS, magic, h.version_major, h.version_minor,
                       h.thiszone, h.sigfigs, h.snaplen, h.linktype)


def parse_record_header(
    data: bytes | memoryview, offset: int, h: FileHeader, record: int | None = None,
    name: str = "", base: int = 0,
) -> RecordHeader:
    """Parses the record header at ``offset`` of ``data`` (a whole file or
    a window of it that starts at file offset ``base``) and checks it
    against the global header. ``record``, ``name`` and ``base`` only make
    the errors say where."""
    have = len(data) - offset
    where = _where(name, record, base + offset)
    if have < RECORD_HEADER_SIZE:
        raise PcapError(f"{where}: truncated header ({have} of {RECORD_HEADER_SIZE} bytes)")
    r = RecordHeader(*struct.unpack_from(h.byte_order + _RECORD_FIELDS, data, offset))
    limit = h.max_record_length
    if r.incl_len > limit:
        raise PcapError(f"{where}: incl_len {r.incl_len} exceeds the largest snaplen {limit}")
    return r


def build_record_header(r: RecordHeader, byte_order: str = "<") -> bytes:
    """The 16 bytes of a record header."""
    return struct.pack(byte_order + _RECORD_FIELDS, r.ts_sec, r.ts_frac, r.incl_len, r.orig_len)


def check_record(data: bytes | memoryview, offset: int, h: FileHeader, record: int,
                 name: str = "", base: int = 0) -> int:
    """Checks the record at ``offset`` is whole; returns the offset of the
    next one. Raises ``PcapError`` saying what is wrong with it."""
    r = parse_record_header(data, offset, h, record, name, base)
    body = offset + RECORD_HEADER_SIZE
    have = len(data) - body
    if have < r.incl_len:
        raise PcapError(f"{_where(name, record, base + offset)}: truncated packet "
                        f"({have} of {r.incl_len} bytes)")
    return body + r.incl_len


def iter_records(data: bytes, name: str = "") -> Iterator[tuple[RecordHeader, bytes]]:
    """Yields (header, packet bytes) for every record of a whole file in
    memory; raises ``PcapError`` at the first fault, after yielding every
    record before it."""
    h = parse_file_header(data, name)
    offset, record = FILE_HEADER_SIZE, 1
    while offset < len(data):
        end = check_record(data, offset, h, record, name)
        r = parse_record_header(data, offset, h)
        yield r, bytes(data[offset + RECORD_HEADER_SIZE:end])
        offset, record = end, record + 1


def build_file(packets: list[tuple[RecordHeader, bytes]],
               h: FileHeader = DEFAULT_FILE_HEADER) -> bytes:
    """A whole file: the global header and a record per (header, packet)."""
    parts = [build_file_header(h)]
    for r, payload in packets:
        parts += [build_record_header(r, h.byte_order), payload]
    return b"".join(parts)
