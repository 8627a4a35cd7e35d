"""PcapWriter: packets to a classic pcap or pcapng file that tcpdump and
Wireshark read."""

from __future__ import annotations

import os
import struct
import sys
import time

from snabbpy.apps.pcap import sources
from snabbpy.core.app import ANY, App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import ffi, lib
from snabbpy.lib import pcap, pcapng

#: Records are gathered in a buffer this big and written in one call.
BUFFER_SIZE = 1 << 20
_NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"


def _format(value: str) -> str:
    if value not in ("pcap", "pcapng"):
        raise ValueError(f"expected pcap or pcapng, got {value!r}")
    return value


class PcapWriter(App):
    """Writes every packet of every input to ``path``, classic pcap or
    pcapng (``format``, or a path ending in ``.pcapng``).

    The file takes its link type, and for classic pcap its whole global
    header, from the first packet's capture source (a ``PcapReader``); keys
    given in the config override. A classic file has one link type: packets
    of another are dropped, counted in ``linktype_mismatch`` and said once.
    A pcapng file gets an interface per source interface (link type,
    snaplen, timestamp resolution and offset, options). A packet read by a
    reader and not changed keeps its capture timestamp and original length,
    so reader -> writer copies a file byte for byte; other packets are
    stamped with the time they are written (on interface 0 in pcapng)."""

    inputs, outputs = ANY, ()

    config = {
        "path": Param(str, doc="the file to write (replaced if it exists)"),
        "format": Param(_format, default=None, doc="pcap or pcapng (default: by the path)"),
        "snaplen": Param(int, default=None, doc="snapshot length: cut packets to it"),
        "nanosecond": Param(bool, default=None, doc="nanosecond timestamps"),
        "linktype": Param(int, default=None, doc="link type (default: the source's)"),
    }
    counters = ("packets", "bytes", "dropped", "linktype_mismatch", "write_errors")

    @classmethod
    def files(cls, conf: dict) -> list[tuple[str, str]]:
        """The file this app writes (checked at load: see core/app.py)."""
        return [("w", conf["path"])]

    def __init__(self, conf: dict) -> None:
        self.path = conf["path"]
        fmt = conf["format"] or ("pcapng" if self.path.endswith(".pcapng") else "pcap")
        self.pcapng = fmt == "pcapng"
        self.nanosecond, self.snaplen = conf["nanosecond"], conf["snaplen"]
        self.linktype = conf["linktype"]
        if self.snaplen is not None and not 1 <= self.snaplen <= pcap.MAXIMUM_SNAPLEN:
            raise ConfigError(f"snaplen {self.snaplen} is outside 1..{pcap.MAXIMUM_SNAPLEN}")
        if self.linktype is not None and not 0 <= self.linktype <= 0xFFFFFFFF:
            raise ConfigError(f"linktype {self.linktype} is not a 32-bit value")
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                              0o644)
        except OSError as exc:
            raise ConfigError(f"path {self.path!r}: cannot create: {exc.strerror}") from None
        self.error: str | None = None
        self.mismatch: str | None = None
        self.buffer = bytearray(BUFFER_SIZE)
        self._cbuf = ffi.from_buffer(self.buffer)
        self._map = ffi.new("uint16_t[]", lib.PCAP_KEYS)
        self.w = w = ffi.new("struct pcap_writer_state *")
        w.cap, w.map, w.pcapng = BUFFER_SIZE, self._map, int(self.pcapng)
        w.snaplen = self.snaplen or 0
        w.since = lib.pcap_serial()  # older capture annotations are stale
        self.header: pcap.FileHeader | None = None  # classic, once known
        self._order = _NATIVE_ORDER
        self._started = False        # file header in the buffer
        self._ifaces = 0             # pcapng interfaces written
        self._done_sources: set[int] = set()
        self._file_pos = 0           # bytes in the file
        self._inputs: list = []
        self._pending = [0, 0]       # packets and payload bytes buffered, not yet written

    def link(self) -> None:
        self._inputs = [i.c for i in self.input.values()]

    def push(self) -> None:
        w = self.w
        w.sec, w.nsec = divmod(time.time_ns(), 10**9)
        for i in self._inputs:
            while not lib.link_empty(i):
                before = (w.packets, w.bytes)
                lib.pcap_write_batch(w, i, self._cbuf)
                self._pending[0] += w.packets - before[0]
                self._pending[1] += w.bytes - before[1]
                self.stats.add("packets", w.packets - before[0])
                self.stats.add("bytes", w.bytes - before[1])
                if w.status == lib.PCAP_NEW_KEY:
                    self._new_key(int(w.key))
                elif w.status == lib.PCAP_FULL:
                    self.flush()
        self.stats["linktype_mismatch"] = w.mismatched

    # -- link types, headers and interfaces --------------------------------

    def _start(self, linktype: int, header: pcap.FileHeader | None,
               units: int, snaplen: int) -> None:
        """Puts the file header in the buffer, once."""
        if self.pcapng:
            self._put(pcapng.build_section_header(self._order))
        else:
            if self.linktype is not None:
                linktype = self.linktype
            if header is None:
                header = pcap.FileHeader(_NATIVE_ORDER, units == 10**9, snaplen=snaplen,
                                         linktype=linktype)
            if self.nanosecond is not None:
                header = _replace(header, nanosecond=self.nanosecond)
            if self.snaplen is not None:
                header = _replace(header, snaplen=self.snaplen)
            header = _replace(header, linktype=linktype)
            self.header = header
            self._order = header.byte_order
            self.w.units[0] = 10**9 if header.nanosecond else 10**6
            self._put(pcap.build_file_header(header))
        self.w.swap = int(self._order != _NATIVE_ORDER)
        self._started = True

    def _default_units(self, units: int | None = None) -> int:
        if self.nanosecond is not None:
            return 10**9 if self.nanosecond else 10**6
        return units if units in (10**6, 10**9) else 10**6

    def _new_key(self, key: int) -> None:
        """Decides where packets of annotation key ``key`` go."""
        found = sources.lookup(key) if key else None
        if not self.pcapng:
            if not self._started:
                if found:
                    src, iface = found
                    units = self._default_units(iface.units)
                    self._start(iface.linktype, src.header, units,
                                iface.snaplen or pcap.MAXIMUM_SNAPLEN)
                else:
                    self._start(pcap.LINKTYPE_ETHERNET, None, self._default_units(),
                                pcap.MAXIMUM_SNAPLEN)
            if found and found[1].linktype != self.header.linktype:
                self._map[key] = lib.PCAP_KEY_MISMATCH
                self._say_mismatch(found[0].path, found[1].linktype, self.header.linktype)
            else:
                self._map[key] = 1
            return
        if not self._started:
            self._start(0, None, 0, 0)
        if found is None:
            if self._map[0] == 0:
                lt = pcap.LINKTYPE_ETHERNET if self.linktype is None else self.linktype
                self._interface(pcapng.Interface(lt & 0xFFFF, self.snaplen or 0,
                                                 self._default_units()), 0)
            self._map[key] = self._map[0]
            return
        src, _ = found
        sid = key // sources.MAX_IFACES
        for n, iface in enumerate(src.interfaces):
            k = sid * sources.MAX_IFACES + n
            if self._map[k]:
                continue
            if self.linktype is not None and (iface.linktype & 0xFFFF) != self.linktype & 0xFFFF:
                self._map[k] = lib.PCAP_KEY_MISMATCH
                self._say_mismatch(src.path, iface.linktype, self.linktype)
                continue
            self._interface(_ng_interface(iface, src.header is not None), k)

    def _interface(self, iface: pcapng.Interface, key: int) -> None:
        n = self._ifaces
        if n >= sources.MAX_IFACES:
            self._map[key] = lib.PCAP_KEY_MISMATCH
            self._say_mismatch("", iface.linktype, None)
            return
        self._put(pcapng.build_interface(iface, self._order))
        self.w.units[n], self.w.offset[n] = iface.units, iface.tsoffset
        self._ifaces = n + 1
        self._map[key] = n + 1

    def _say_mismatch(self, path: str, got: int, want: int | None) -> None:
        if self.mismatch is None:
            self.mismatch = (f"{self.path}: packets of link type {got} (from {path}) dropped: "
                             f"the file's link type is {want}" if want is not None else
                             f"{self.path}: more than {sources.MAX_IFACES} interfaces")
            print(f"snabbpy: app {self.name!r}: {self.mismatch}", file=sys.stderr)

    def _put(self, data: bytes) -> None:
        """Appends header bytes to the buffer (flushing first if full)."""
        if BUFFER_SIZE - self.w.used < len(data):
            self.flush()
        u = self.w.used
        self.buffer[u:u + len(data)] = data
        self.w.used = u + len(data)

    # -- writing -------------------------------------------------------------

    def flush(self) -> None:
        """Writes the buffered records to the file. Their packets were
        counted in ``packets`` when buffered; when a write fails (disk
        full), the file is cut back to its last whole record and the
        packets that did not reach it move to ``dropped``."""
        used = self.w.used
        view = memoryview(self.buffer)[:used]
        written = 0
        while written < used and self.error is None:
            try:
                written += os.write(self.fd, view[written:])
            except OSError as exc:
                self.error = f"{self.path}: write failed: {exc.strerror}"
                self.stats.add("write_errors")
                print(f"snabbpy: app {self.name!r}: {self.error}; later packets are dropped",
                      file=sys.stderr)
        if written < used:
            whole, packets, nbytes = self._whole(written)
            if whole < written:
                try:
                    os.ftruncate(self.fd, self._file_pos + whole)
                except OSError:
                    pass
            lost, lost_bytes = self._pending[0] - packets, self._pending[1] - nbytes
            self.stats["packets"] = self.stats["packets"] - lost
            self.stats["bytes"] = self.stats["bytes"] - lost_bytes
            self.stats.add("dropped", lost)
            written = whole
        self._file_pos += written
        self.w.used = 0
        self._pending = [0, 0]

    def _whole(self, written: int) -> tuple[int, int, int]:
        """How far the first ``written`` bytes of the buffer hold whole
        records (or header), and the packets and payload bytes in them."""
        buf, pos, packets, nbytes = self.buffer, 0, 0, 0
        if self._file_pos == 0:   # the buffer starts with the file header
            pos = pcap.FILE_HEADER_SIZE if not self.pcapng else \
                struct.unpack_from(self._order + "I", buf, 4)[0]
            if written < pos:
                return 0, 0, 0
        end = self.w.used
        while pos < end:
            if self.pcapng:
                btype, n = struct.unpack_from(self._order + "II", buf, pos)
                payload = struct.unpack_from(self._order + "I", buf, pos + 20)[0] \
                    if btype == pcapng.EPB_TYPE else None
            else:
                payload = struct.unpack_from(self._order + "I", buf, pos + 8)[0]
                n = pcap.RECORD_HEADER_SIZE + payload
            if pos + n > written:
                break
            pos += n
            if payload is not None:
                packets, nbytes = packets + 1, nbytes + payload
        return pos, packets, nbytes

    def report(self) -> str | None:
        """The write error and the link-type mismatch, if any."""
        lines = [f"error: {m}" for m in (self.error, self.mismatch) if m]
        return "\n".join(lines) or None

    def stop(self) -> None:
        if not self._started:
            self._new_key(0)
        self.flush()
        os.close(self.fd)


def _replace(h: pcap.FileHeader, **changes) -> pcap.FileHeader:
    from dataclasses import replace
    return replace(h, **changes)


def _ng_interface(iface: pcapng.Interface, classic: bool) -> pcapng.Interface:
    """The pcapng interface for a source interface: a classic capture's
    link-type field becomes its low 16 bits and, when its upper bits give
    one, an if_fcslen option."""
    if not classic:
        return iface
    options = ()
    fcs = pcap.FileHeader(linktype=iface.linktype).fcs_length
    if fcs is not None:
        options = ((pcapng.OPT_FCSLEN, bytes([fcs])),)
    return pcapng.Interface(iface.linktype & 0xFFFF, iface.snaplen, iface.units, 0, options)
