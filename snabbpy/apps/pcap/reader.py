"""PcapReader: packets from a classic pcap or a pcapng file."""

from __future__ import annotations

import struct
import sys

from snabbpy.apps.pcap import sources
from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import ffi, lib
from snabbpy.lib import pcap, pcapng

#: Bytes read from the file at a time: many records per read() call.
CHUNK_SIZE = 1 << 20
#: The largest pcapng block the reader holds in memory.
MAX_BLOCK = 16 << 20
_NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"


class PcapReader(App):
    """Sends the packets of a capture file (classic pcap or pcapng, told
    apart by the magic) on its ``output``, once or over and over (``loop``).

    Each packet carries its capture timestamp, original length, link type
    and interface to a ``PcapWriter`` (see the README). A record longer
    than a packet (10240 bytes) is skipped and counted in ``oversize`` (and
    said once at the end); one longer than the header's snaplen is read and
    counted in ``over_snaplen``. A truncated or corrupt file: every packet
    before the fault is sent, then the reader stops, counts ``errors`` and
    says on stderr (and in its report) which record at which offset is bad.
    """

    inputs, outputs = (), ("output",)

    config = {
        "path": Param(str, doc="the pcap or pcapng file to read"),
        "loop": Param(bool, default=False, doc="start over at the end of the file"),
    }
    counters = ("packets", "bytes", "oversize", "over_snaplen", "skipped_blocks", "errors",
                "loops")

    @classmethod
    def files(cls, conf: dict) -> list[tuple[str, str]]:
        """The file this app reads (checked at load: see core/app.py)."""
        return [("r", conf["path"])]

    def __init__(self, conf: dict) -> None:
        self.path = conf["path"]
        self.loop = conf["loop"]
        self.error: str | None = None
        self.done = False
        try:
            self.file = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed in stop()
        except OSError as exc:
            raise ConfigError(f"path {self.path!r}: cannot open: {exc.strerror}") from None
        first = self.file.read(pcap.FILE_HEADER_SIZE)
        self.pcapng = first[:4] == pcapng.MAGIC
        self.source = sources.Source(self.path)
        try:
            if self.pcapng:
                pcapng.parse_section_header(first, f"{self.path}: block 1 at offset 0")
                self._start = 0
                self.header = None
            else:
                self.header = pcap.parse_file_header(first, self.path)
                self._start = pcap.FILE_HEADER_SIZE
                self.source.header = self.header
                self.source.interfaces.append(sources.classic_interface(self.header))
        except pcap.PcapError as exc:
            self.file.close()
            raise ConfigError(str(exc)) from None
        self.file.seek(self._start)
        #: The classic header's link type field (None for pcapng: per interface).
        self.linktype = self.header.linktype if self.header else None
        self.buffer = bytearray(CHUNK_SIZE)
        self._cbuf = ffi.from_buffer(self.buffer)
        self.state = st = ffi.new("struct pcap_reader_state *")
        self.sid = sources.register(self.source)
        st.source = self.sid
        if self.header:
            st.swap = int(self.header.byte_order != _NATIVE_ORDER)
            st.units = 10**9 if self.header.nanosecond else 10**6
            st.max_incl = self.header.max_record_length
            st.snaplen = self.header.snaplen
        self._order = "<"
        self._base = self._start      # file offset of buffer[0]
        self._pass_start = 0          # st.packets when this pass began
        self._out = None
        self._read = lib.pcapng_read_batch if self.pcapng else lib.pcap_read_batch

    def link(self) -> None:
        out = self.output.get("output")
        self._out = out.c if out is not None else None

    def link_type(self) -> int | None:
        """The link type of what it sends (core/linktypes.py): a classic
        capture's (low 16 bits); None for pcapng, whose interfaces come as
        it reads."""
        return None if self.linktype is None else self.linktype & 0xFFFF

    def pull(self) -> None:
        if self.done or self._out is None:
            return
        st, room = self.state, lib.link_nwritable(self._out)
        while room > 0 and not self.done:
            room -= self._read(st, self._cbuf, self._out, room)
            if st.status == lib.PCAP_NEED_MORE:
                if not self._refill():
                    break
            elif st.status == lib.PCAP_META_BLOCK:
                self._meta_block()
            elif st.status == lib.PCAP_BAD_LENGTH:
                self._fail()
            elif st.status == lib.PCAP_NO_MEMORY:
                break  # try again next breath, when packets were freed
        for name in ("packets", "bytes", "oversize", "over_snaplen"):
            self.stats[name] = getattr(st, name)
        self.stats["skipped_blocks"] = st.skipped

    def _where(self) -> str:
        st = self.state
        what = f"block {int(st.blocks) + 1}" if self.pcapng else f"record {int(st.records) + 1}"
        return f"{self.path}: {what} at offset {self._base + int(st.pos)}"

    def _meta_block(self) -> None:
        """A section header or interface description block at st.pos:
        parse it (reading more first if it is not all there)."""
        st = self.state
        view = memoryview(self.buffer)[st.pos:st.limit]
        where = self._where()
        try:
            (btype,) = struct.unpack_from(self._order + "I", view)
            if btype == pcapng.SHB_TYPE or struct.unpack_from("<I", view)[0] == pcapng.SHB_TYPE:
                if len(view) < 12:
                    return self._need(12)
                order, length = pcapng.parse_section_header(view, where)
                if len(view) < length:
                    return self._need(length)
                pcapng.check_trailer(view, order, length, where)
                self._order = order
                st.swap = int(order != _NATIVE_ORDER)
                st.iface_base = st.nifaces
            else:
                (length,) = struct.unpack_from(self._order + "I", view, 4)
                interface = pcapng.parse_interface(view, self._order, where)
                n = int(st.nifaces)
                if n >= sources.MAX_IFACES:
                    raise pcap.PcapError(f"{where}: more than {sources.MAX_IFACES} interfaces")
                if n < len(self.source.interfaces):
                    self.source.interfaces[n] = interface
                else:
                    self.source.interfaces.append(interface)
                st.iface_units[n] = interface.units
                st.iface_offset[n] = interface.tsoffset
                st.iface_snaplen[n] = interface.snaplen
                st.nifaces = n + 1
        except (pcap.PcapError, struct.error) as exc:
            return self._fail(str(exc))
        st.pos += length
        st.blocks += 1
        return None

    def _need(self, n: int) -> None:
        self.state.need = n
        self._refill()

    def _refill(self) -> bool:
        """Moves the partial record to the front of the buffer and reads
        more after it (growing the buffer for a big pcapng block); at the
        end of the file, checks nothing is left over and starts over
        (``loop``) or stops. False: nothing to read now."""
        st = self.state
        rest = st.limit - st.pos
        if self.pcapng and st.need > len(self.buffer) and st.pos == 0:
            if st.need > MAX_BLOCK:
                self._fail(f"{self._where()}: block of {st.need} bytes is too long")
                return False
            bigger = bytearray(st.need)
            bigger[:rest] = self.buffer[:rest]
            self._cbuf = None  # release the old buffer's export
            self.buffer, self._cbuf = bigger, ffi.from_buffer(bigger)
        self.buffer[:rest] = self.buffer[st.pos:st.limit]
        self._base += st.pos
        st.pos, st.limit = 0, rest
        n = self.file.readinto(memoryview(self.buffer)[rest:])
        st.limit += n
        if n:
            return True
        if rest:
            self._fail()
        elif self.loop and st.packets > self._pass_start:  # a pass gave packets: go again
            self.file.seek(self._start)
            self._base, self._pass_start = self._start, st.packets
            st.nifaces = st.iface_base = 0
            self.stats.add("loops")
            return True
        else:
            self.done = True
        return False

    def _fail(self, message: str | None = None) -> None:
        """Stops reading at the record the C loop refused, with a message
        saying where and what is wrong with it."""
        st = self.state
        if message is None:
            message = self._bad_pcapng() if self.pcapng else self._bad_record()
        self.error, self.done = message, True
        self.stats.add("errors")
        print(f"snabbpy: app {self.name!r}: {message}; stopped reading", file=sys.stderr)
        st.status = lib.PCAP_OK

    def _bad_record(self) -> str:
        st = self.state
        window = memoryview(self.buffer)[st.pos:st.limit]
        record, offset = int(st.records) + 1, self._base + int(st.pos)
        try:
            pcap.check_record(window, 0, self.header, record, self.path, offset)
        except pcap.PcapError as exc:
            return str(exc)
        return f"{self.path}: record {record} at offset {offset}: unreadable"

    def _bad_pcapng(self) -> str:
        st = self.state
        have = int(st.limit - st.pos)
        if st.status == lib.PCAP_BAD_LENGTH:
            (length,) = struct.unpack_from(self._order + "I", self.buffer, st.pos + 4)
            why = pcapng.BAD_REASONS.get(st.bad, "bad block").format(length=length)
        else:
            why = f"truncated block ({have} of {max(int(st.need), 12)} bytes)"
        return f"{self._where()}: {why}"

    def report(self) -> str | None:
        """The error that stopped the reader and the records it skipped."""
        lines = []
        if self.state.oversize:
            lines.append(f"skipped {self.state.oversize:,} records longer than a packet "
                         f"(10240 bytes)")
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n".join(lines) or None

    def stop(self) -> None:
        if self.state.oversize:
            print(f"snabbpy: app {self.name!r}: {self.path}: skipped "
                  f"{self.state.oversize:,} records longer than a packet (10240 bytes)",
                  file=sys.stderr)
        self.file.close()
        sources.release(self.sid)
