"""atheris harness: the vhost-user decoder and the VhostUser device's
request handlers, fed a session of messages from a hostile frontend.

Run: ``python3 tests/fuzz/fuzz_vhost_user.py [libFuzzer flags] [corpus dirs]``.

Each input is a session of up to 12 messages, half the time after a good
setup (features, an 8-page memory region, both rings) so that later
messages meet running rings. A message is mostly built
from structured choices (a request the device handles, a valid header, a
payload of the right shape whose memory regions and ring addresses mostly
fit the fds that come with it), sometimes raw bytes, so the fuzzer gets past
the header checks into the handlers. Fds are real: memfds of chosen sizes
(possibly shorter than their region), eventfds, a pipe, a directory. The
bytes go through ``MessageDecoder`` in the chunks the app reads, each
decoded request to ``VhostDevice.handle``, and after each message the
started rings run once over the frontend's memory (descriptors the input
wrote there): the TX ring discarding, the RX ring given a few packets.

A crash is any exception other than the two a peer may cause
(``VhostUserProtocolError``, ``DeviceError``), a packet or an fd left over
after the session: the decoder and the device own every fd they are handed.
"""

from __future__ import annotations

import os
import struct
import sys

import atheris

with atheris.instrument_imports():
    from snabbpy.apps.vhost.device import SUPPORTED_FEATURES, DeviceError, VhostDevice
    from snabbpy.core import packet
    from snabbpy.core.link import Link
    from snabbpy.core.native import ffi
    from snabbpy.lib.vhost_user import FRONTEND, MessageDecoder, Request, VhostUserProtocolError
    from snabbpy.lib.vhost_user.constants import HEADER_SIZE

PAGE = 4096
REQUESTS = sorted(int(r) for r in Request)
HANDLED = [R.value for R in (Request.GET_FEATURES, Request.SET_FEATURES,
                             Request.SET_OWNER, Request.RESET_OWNER, Request.SET_MEM_TABLE,
                             Request.SET_VRING_NUM, Request.SET_VRING_ADDR,
                             Request.SET_VRING_BASE, Request.GET_VRING_BASE,
                             Request.SET_VRING_KICK, Request.SET_VRING_CALL,
                             Request.SET_VRING_ERR, Request.SET_VRING_ENABLE,
                             Request.GET_PROTOCOL_FEATURES, Request.SET_PROTOCOL_FEATURES,
                             Request.GET_QUEUE_NUM)]
GPA = (0, 0x100000, 0x100000 - PAGE, 2**64 - PAGE)
USER = (0x7f0000000000, 0x7f0000100000, 0x7f0000000000 + PAGE, 2**64 - PAGE)


def _open_fds() -> set[int]:
    """Open fds, but packet memory (grown on first use, kept for good)."""
    out = set()
    for n in os.listdir("/proc/self/fd"):
        try:
            if "snabbpy-dma" not in os.readlink(f"/proc/self/fd/{n}"):
                out.add(int(n))
        except OSError:
            pass  # the fd of the listing itself
    return out


class Session:
    """The fds one input made; those never handed over are closed at the end."""

    def __init__(self, fdp: atheris.FuzzedDataProvider) -> None:
        self.fdp = fdp
        self.mine: list[int] = []
        self.memfds: list[int] = []

    def make_fd(self) -> int:
        kind = self.fdp.ConsumeIntInRange(0, 7)
        if kind <= 4:
            fd = os.memfd_create("fuzz-guest")
            os.ftruncate(fd, self.fdp.ConsumeIntInRange(0, 8) * PAGE)
            self.memfds.append(fd)
        elif kind == 5:
            fd = os.eventfd(0, os.EFD_NONBLOCK)
        elif kind == 6:
            r, fd = os.pipe()
            os.close(r)
        else:
            fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
        self.mine.append(fd)
        return fd

    def region(self) -> bytes:
        f = self.fdp
        if f.ConsumeIntInRange(0, 15) == 0:
            return f.ConsumeBytes(32).ljust(32, b"\0")
        gpa = GPA[f.ConsumeIntInRange(0, len(GPA) - 1)]
        size = f.ConsumeIntInRange(0, 8) * PAGE + (f.ConsumeIntInRange(0, 3) == 0)
        user = USER[f.ConsumeIntInRange(0, len(USER) - 1)]
        offset = f.ConsumeIntInRange(0, 2) * PAGE + f.ConsumeIntInRange(0, 1) * 8
        return struct.pack("<QQQQ", gpa, size, user, offset)

    def payload(self, code: int) -> tuple[bytes, int]:
        """The payload bytes and how many fds should come with them."""
        f = self.fdp
        if f.ConsumeIntInRange(0, 15) == 0:
            return f.ConsumeBytes(f.ConsumeIntInRange(0, 300)), f.ConsumeIntInRange(0, 2)
        index = f.ConsumeIntInRange(0, 2)
        if code == Request.SET_MEM_TABLE:
            n = f.ConsumeIntInRange(0, 9)
            body = struct.pack("<II", n, 0) + b"".join(self.region() for _ in range(n))
            return body, n
        if code in (Request.SET_FEATURES,):
            return struct.pack("<Q", SUPPORTED_FEATURES & f.ConsumeInt(8)), 0
        if code == Request.SET_PROTOCOL_FEATURES:
            return struct.pack("<Q", f.ConsumeIntInRange(0, 0x3ff)), 0
        if code in (Request.SET_VRING_NUM, Request.SET_VRING_BASE, Request.GET_VRING_BASE,
                    Request.SET_VRING_ENABLE):
            num = (1 << f.ConsumeIntInRange(0, 16) % 9) if f.ConsumeBool() else f.ConsumeInt(4)
            return struct.pack("<II", index, num & 0xFFFFFFFF), 0
        if code == Request.SET_VRING_ADDR:
            base = USER[f.ConsumeIntInRange(0, len(USER) - 1)]
            addrs = [(base + 16 * f.ConsumeIntInRange(0, 8 * PAGE // 16)
                      + (f.ConsumeIntInRange(0, 7) == 0)) & (2**64 - 1) for _ in range(3)]
            return struct.pack("<IIQQQQ", index, f.ConsumeIntInRange(0, 1), *addrs, 0), 0
        if code in (Request.SET_VRING_KICK, Request.SET_VRING_CALL, Request.SET_VRING_ERR):
            nofd = f.ConsumeBool()
            return struct.pack("<Q", index | nofd << 8), 0 if nofd else 1
        return b"", 0

    def message(self) -> tuple[bytes, list[int]]:
        f = self.fdp
        pick = f.ConsumeIntInRange(0, 31)
        code = (HANDLED[pick % len(HANDLED)] if pick < 28
                else REQUESTS[f.ConsumeIntInRange(0, len(REQUESTS) - 1)] if pick < 31
                else f.ConsumeInt(4) & 0xFFFFFFFF)
        flags = 1 | (8 if f.ConsumeBool() else 0)
        if f.ConsumeIntInRange(0, 15) == 0:
            flags = f.ConsumeInt(4) & 0xFFFFFFFF
        body, nfds = self.payload(code)
        nfds = max(0, nfds + (f.ConsumeIntInRange(-1, 1) if f.ConsumeIntInRange(0, 7) == 0
                              else 0))
        fds = [self.make_fd() for _ in range(min(nfds, 10))]
        return struct.pack("<III", code, flags, len(body)) + body, fds

    def prologue(self) -> list[tuple[bytes, list[int]]]:
        """A good setup: features, one 8-page region, both rings of 8
        entries (descriptors, avail, used in its first three pages), so the
        messages after it reach running rings."""
        fd = os.memfd_create("fuzz-guest")
        os.ftruncate(fd, 8 * PAGE)
        self.memfds.append(fd)
        self.mine.append(fd)
        user = USER[0]
        out = [(_msg(Request.SET_FEATURES, struct.pack("<Q", SUPPORTED_FEATURES)), []),
               (_msg(Request.SET_MEM_TABLE, struct.pack("<IIQQQQ", 1, 0, GPA[0], 8 * PAGE,
                                                      user, 0)), [fd])]
        for index in (0, 1):
            base = user + index * 4 * PAGE
            kick = os.eventfd(0, os.EFD_NONBLOCK)
            self.mine.append(kick)
            out += [(_msg(Request.SET_VRING_NUM, struct.pack("<II", index, 8)), []),
                    (_msg(Request.SET_VRING_ADDR, struct.pack(
                        "<IIQQQQ", index, 0, base, base + 2 * PAGE, base + PAGE, 0)), []),
                    (_msg(Request.SET_VRING_KICK, struct.pack("<Q", index)), [kick]),
                    (_msg(Request.SET_VRING_ENABLE, struct.pack("<II", index, 1)), [])]
        return out

    def scribble(self) -> None:
        """The frontend writes ring contents into its memory."""
        if self.memfds and self.fdp.ConsumeBool():
            fd = self.memfds[self.fdp.ConsumeIntInRange(0, len(self.memfds) - 1)]
            try:
                os.pwrite(fd, self.fdp.ConsumeBytes(256), self.fdp.ConsumeIntInRange(0, 8 * PAGE))
            except OSError:
                pass  # closed already (refused) or not writable: nothing to write

    def handed_over(self, fds: list[int]) -> None:
        for fd in fds:
            self.mine.remove(fd)

    def close(self) -> None:
        for fd in self.mine:
            os.close(fd)


def _msg(code: int, body: bytes) -> bytes:
    return struct.pack("<III", code, 1, len(body)) + body


_LINKS: list[Link] = []


def _link() -> Link:
    """The one link that carries packets to the guest, made once."""
    if not _LINKS:
        _LINKS.append(Link("to-guest"))
    return _LINKS[0]


def run_session(data: bytes) -> None:
    """One input: a session of messages, then every fd accounted for."""
    before = _open_fds()
    fdp = atheris.FuzzedDataProvider(data)
    session = Session(fdp)
    stats = (ffi.new("struct dr_stats *"), ffi.new("struct dr_stats *"))
    device = VhostDevice(SUPPORTED_FEATURES, stats, max_queue_size=256)
    decoder = MessageDecoder(FRONTEND)
    to_guest = _link()
    in_use = packet.in_use()
    try:
        script = session.prologue() if fdp.ConsumeBool() else []
        for step in range(len(script) + fdp.ConsumeIntInRange(1, 12)):
            raw, fds = script[step] if step < len(script) else session.message()
            try:
                messages = []
                at, first = 0, True
                while at < len(raw):
                    want = decoder.wanted if fdp.ConsumeBool() else fdp.ConsumeIntInRange(1, 64)
                    chunk = raw[at:at + max(1, want)]
                    if first:  # from here on the decoder owns them
                        session.handed_over(fds)
                    messages += decoder.feed(chunk, fds if first else ())
                    first = False
                    at += len(chunk)
                assert decoder.pending_bytes < HEADER_SIZE + 4096
            except VhostUserProtocolError:
                break
            for msg in messages:
                try:
                    device.handle(msg)
                except DeviceError:
                    pass
            if step + 1 < len(script):
                continue
            session.scribble()
            for vring in device.vrings:
                if vring.started and vring.index == 1:
                    vring.tx_fn(vring.q, ffi.NULL, 64)
                elif vring.started:  # packets into the frontend's memory
                    for _ in range(fdp.ConsumeIntInRange(0, 3)):
                        to_guest.transmit(packet.from_bytes(
                            bytes(fdp.ConsumeIntInRange(0, 2000))))
                    vring.rx_fn(vring.q, to_guest.c, 8)
                    to_guest.drain()
    finally:
        decoder.close()
        device.reset()
        session.close()
    if packet.in_use() != in_use:
        raise AssertionError(f"packets leaked: {packet.in_use() - in_use}")
    leaked = _open_fds() - before
    if leaked:
        raise AssertionError(f"fds left open after the session: {sorted(leaked)}")


def main() -> None:
    """libFuzzer's command line: flags and corpus directories."""
    atheris.Setup(sys.argv, run_session)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
