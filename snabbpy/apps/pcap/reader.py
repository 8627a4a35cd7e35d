"""PcapReader: packets from a classic pcap file (``tcpdump -w``)."""

from __future__ import annotations

import sys

from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import ffi, lib
from snabbpy.lib import pcap

#: Bytes read from the file at a time: many records per read() call.
CHUNK_SIZE = 1 << 20
_NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"


class PcapReader(App):
    """Sends the packets of a pcap file on its ``output``, as fast as the
    link takes them, once or over and over (``loop``).

    Each packet carries its capture timestamp to a ``PcapWriter`` (see the
    README). A record longer than a packet (10240 bytes) is skipped and
    counted in ``oversize``. A truncated or corrupt file: every packet
    before the fault is sent, then the reader stops, counts ``errors`` and
    says on stderr (and in its report) which record at which offset is bad.
    """

    inputs, outputs = (), ("output",)

    config = {
        "path": Param(str, doc="the pcap file to read"),
        "loop": Param(bool, default=False, doc="start over at the end of the file"),
    }
    counters = ("packets", "bytes", "oversize", "errors", "loops")

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
        try:
            self.header = pcap.parse_file_header(self.file.read(pcap.FILE_HEADER_SIZE), self.path)
        except pcap.PcapError as exc:
            self.file.close()
            raise ConfigError(str(exc)) from None
        if self.header.linktype != pcap.LINKTYPE_ETHERNET:
            self.file.close()
            raise ConfigError(f"{self.path}: link type {self.header.linktype} is not "
                              f"Ethernet ({pcap.LINKTYPE_ETHERNET})")
        self.buffer = bytearray(CHUNK_SIZE)
        self._cbuf = ffi.from_buffer(self.buffer)
        self.state = st = ffi.new("struct pcap_reader_state *")
        st.swap = int(self.header.byte_order != _NATIVE_ORDER)
        st.nanosecond = int(self.header.nanosecond)
        st.max_incl = self.header.max_record_length
        self._base = pcap.FILE_HEADER_SIZE  # file offset of buffer[0]
        self._pass_start = 0                # st.packets when this pass began
        self._out = None

    def link(self) -> None:
        out = self.output.get("output")
        self._out = out.c if out is not None else None

    def pull(self) -> None:
        if self.done or self._out is None:
            return
        st, room = self.state, lib.link_nwritable(self._out)
        while room > 0 and not self.done:
            room -= lib.pcap_read_batch(st, self._cbuf, self._out, room)
            if st.status == lib.PCAP_NEED_MORE:
                if not self._refill():
                    break
            elif st.status == lib.PCAP_BAD_LENGTH:
                self._fail()
            elif st.status == lib.PCAP_NO_MEMORY:
                break  # try again next breath, when packets were freed
        for name in ("packets", "bytes", "oversize"):
            self.stats[name] = getattr(st, name)

    def _refill(self) -> bool:
        """Moves the partial record to the front of the buffer and reads
        more after it; at the end of the file, checks nothing is left
        over and starts over (``loop``) or stops. False: nothing to read now."""
        st = self.state
        rest = st.limit - st.pos
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
            self.file.seek(pcap.FILE_HEADER_SIZE)
            self._base, self._pass_start = pcap.FILE_HEADER_SIZE, st.packets
            self.stats.add("loops")
            return True
        else:
            self.done = True
        return False

    def _fail(self) -> None:
        """Stops reading at the record the C loop refused, with a message
        saying where and what is wrong with it."""
        st = self.state
        window = memoryview(self.buffer)[st.pos:st.limit]
        record, offset = int(st.records) + 1, self._base + int(st.pos)
        try:
            pcap.check_record(window, 0, self.header, record, self.path, offset)
            message = f"{self.path}: record {record} at offset {offset}: unreadable"
        except pcap.PcapError as exc:
            message = str(exc)
        self.error, self.done = message, True
        self.stats.add("errors")
        print(f"snabbpy: app {self.name!r}: {message}; stopped reading", file=sys.stderr)

    def report(self) -> str | None:
        """The error that stopped the reader, if any."""
        return f"error: {self.error}" if self.error else None

    def stop(self) -> None:
        self.file.close()
