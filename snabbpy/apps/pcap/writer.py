"""PcapWriter: packets to a classic pcap file that tcpdump and Wireshark read."""

from __future__ import annotations

import os
import sys
import time

from snabbpy.core import packet
from snabbpy.core.app import ANY, App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import ffi, lib
from snabbpy.lib import pcap

#: Records are gathered in a buffer this big and written in one call.
BUFFER_SIZE = 1 << 20


class PcapWriter(App):
    """Writes every packet of every input to ``path``: microsecond (or
    nanosecond) timestamps, Ethernet link type, this machine's byte order.

    A packet read by a ``PcapReader`` and not changed since keeps its
    capture timestamp and original length, so reader -> writer copies a
    file byte for byte; other packets are stamped with the time they are
    written. Writes are buffered; the buffer is flushed when full and on
    stop."""

    inputs, outputs = ANY, ()

    config = {
        "path": Param(str, doc="the pcap file to write (replaced if it exists)"),
        "snaplen": Param(int, default=pcap.MAXIMUM_SNAPLEN, doc="snapshot length in the header"),
        "nanosecond": Param(bool, default=False, doc="nanosecond timestamps"),
    }
    counters = ("packets", "bytes", "dropped", "write_errors")

    @classmethod
    def files(cls, conf: dict) -> list[tuple[str, str]]:
        """The file this app writes (checked at load: see core/app.py)."""
        return [("w", conf["path"])]

    def __init__(self, conf: dict) -> None:
        self.path = conf["path"]
        self.nanosecond = conf["nanosecond"]
        snaplen = conf["snaplen"]
        if not packet.PAYLOAD_SIZE <= snaplen <= pcap.MAXIMUM_SNAPLEN:
            raise ConfigError(f"snaplen {snaplen} is outside {packet.PAYLOAD_SIZE}.."
                              f"{pcap.MAXIMUM_SNAPLEN} (every packet must fit)")
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                              0o644)
        except OSError as exc:
            raise ConfigError(f"path {self.path!r}: cannot create: {exc.strerror}") from None
        self.error: str | None = None
        order = "<" if sys.byteorder == "little" else ">"
        header = pcap.FileHeader(order, self.nanosecond, snaplen=snaplen)
        self.buffer = bytearray(BUFFER_SIZE)
        self._cbuf = ffi.from_buffer(self.buffer)
        self._used = ffi.new("uint32_t *", 0)
        hdr = pcap.build_file_header(header)
        self.buffer[:len(hdr)] = hdr
        self._used[0] = len(hdr)
        self._inputs: list = []
        self._pending = [0, 0]  # packets and payload bytes in the buffer, not yet written
        self._since = lib.pcap_serial()  # older capture annotations are stale

    def link(self) -> None:
        self._inputs = [i.c for i in self.input.values()]

    def push(self) -> None:
        now = time.time_ns()
        sec, nsec = divmod(now, 10**9)
        for i in self._inputs:
            while True:
                before = self._used[0]
                n = lib.pcap_write_batch(i, self._cbuf, BUFFER_SIZE, self._used, sec, nsec,
                                         int(self.nanosecond), self._since)
                self._count(n, self._used[0] - before)
                if lib.link_empty(i):
                    break
                self.flush()  # the buffer is full

    def _count(self, n: int, written: int) -> None:
        if n:
            nbytes = written - n * pcap.RECORD_HEADER_SIZE
            self.stats.add("packets", n)
            self.stats.add("bytes", nbytes)
            self._pending[0] += n
            self._pending[1] += nbytes

    def flush(self) -> None:
        """Writes the buffered records to the file. Their packets were
        counted in ``packets`` when buffered; if the write fails they move
        to ``dropped``."""
        view = memoryview(self.buffer)[:self._used[0]]
        while view and self.error is None:
            try:
                view = view[os.write(self.fd, view):]
            except OSError as exc:
                self.error = f"{self.path}: write failed: {exc.strerror}"
                self.stats.add("write_errors")
                print(f"snabbpy: app {self.name!r}: {self.error}; later packets are dropped",
                      file=sys.stderr)
        if view:  # not all written: the records still in it are lost
            lost, lost_bytes = self._pending
            self.stats["packets"] = self.stats["packets"] - lost
            self.stats["bytes"] = self.stats["bytes"] - lost_bytes
            self.stats.add("dropped", lost)
        self._used[0] = 0
        self._pending = [0, 0]

    def report(self) -> str | None:
        """The write error, if any."""
        return f"error: {self.error}" if self.error else None

    def stop(self) -> None:
        self.flush()
        os.close(self.fd)
