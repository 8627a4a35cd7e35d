"""tcpdump filters: pcap-filter expressions compiled by the system's libpcap
into classic BPF, checked, and run natively.

``compile_expression("tcp port 80")`` asks libpcap (``pcap_compile`` on a
``pcap_open_dead`` handle, through cffi in ABI mode) for the program; the
result is validated as the kernel validates classic BPF (``validate``) and
wrapped in a ``Filter``, which runs it in snabbpy's native interpreter
(``bpf.c``) over one packet (``matches``), over arrays of packets in one
numpy buffer (``match``: a mask), or over a whole link (``filter_link``),
and which attaches it to a socket or TAP device in the kernel
(``attach_socket``, ``attach_tap``) so that unwanted frames never reach
userspace.
"""

from __future__ import annotations

import ctypes
import fcntl
import socket
import struct
import threading
from dataclasses import dataclass

import cffi
import numpy as np

from snabbpy.core.native import ffi as native_ffi
from snabbpy.core.native import lib as native_lib

#: Link types (pcap's DLT_* values) by the names libpcap and tcpdump use.
DLT_EN10MB = 1
DLT_RAW = 12
MAX_INSNS = 4096  # BPF_MAXINSNS, as the kernel
MEMWORDS = 16     # BPF_MEMWORDS: scratch memory cells
SNAPLEN = 65535
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
TUNATTACHFILTER = 0x401054D5  # _IOW('T', 213, struct sock_fprog)

_CDEF = """
typedef struct pcap pcap_t;
struct bpf_insn { unsigned short code; unsigned char jt; unsigned char jf; uint32_t k; };
struct bpf_program { unsigned int bf_len; struct bpf_insn *bf_insns; };
pcap_t *pcap_open_dead(int linktype, int snaplen);
int pcap_compile(pcap_t *p, struct bpf_program *fp, const char *str, int optimize,
                 uint32_t netmask);
void pcap_freecode(struct bpf_program *fp);
char *pcap_geterr(pcap_t *p);
void pcap_close(pcap_t *p);
int pcap_datalink_name_to_val(const char *name);
const char *pcap_lib_version(void);
"""
_LIBRARY_NAMES = ("libpcap.so.0.8", "libpcap.so.1", "libpcap.so")

_ffi = cffi.FFI()
_ffi.cdef(_CDEF)
_lock = threading.Lock()  # pcap_compile is not reentrant in every libpcap
_libpcap = None


class BpfError(ValueError):
    """An expression libpcap cannot compile, or a program that fails
    validation; the message says why."""


class LibpcapMissing(BpfError):
    """The system's libpcap cannot be loaded (install libpcap0.8)."""


def libpcap():
    """The system's libpcap, loaded once (``LibpcapMissing`` when absent)."""
    global _libpcap
    if _libpcap is None:
        errors = []
        for name in _LIBRARY_NAMES:
            try:
                _libpcap = _ffi.dlopen(name)
                break
            except OSError as exc:
                errors.append(str(exc))
        else:
            raise LibpcapMissing("cannot load libpcap (install libpcap0.8: "
                                 "scripts/install-netutils.sh): " + "; ".join(errors))
    return _libpcap


def linktype_value(linktype: int | str) -> int:
    """A DLT value from a number or a name such as ``EN10MB`` or ``RAW``."""
    if isinstance(linktype, bool):
        raise BpfError(f"linktype {linktype!r}: expected a DLT name or number")
    if isinstance(linktype, int):
        if not 0 <= linktype <= 0xFFFF:
            raise BpfError(f"linktype {linktype}: out of range")
        return linktype
    if not isinstance(linktype, str) or not linktype:
        raise BpfError(f"linktype {linktype!r}: expected a DLT name or number")
    name = linktype.upper().removeprefix("DLT_")
    value = libpcap().pcap_datalink_name_to_val(name.encode())
    if value < 0:
        raise BpfError(f"linktype {linktype!r}: libpcap knows no such link type")
    return value


@dataclass(frozen=True)
class Insn:
    """One classic BPF instruction, as ``struct sock_filter``."""

    code: int
    jt: int
    jf: int
    k: int


# The opcodes the interpreter runs (and the kernel accepts from libpcap).
_LOADS = {0x20: 4, 0x28: 2, 0x30: 1, 0x40: 4, 0x48: 2, 0x50: 1, 0xB1: 1}
_SCRATCH = {0x60, 0x61, 0x02, 0x03}
_CONST_DIV = {0x34, 0x94}
_CONST_SHIFT = {0x64, 0x74}
_COND_JUMPS = {0x15, 0x1D, 0x25, 0x2D, 0x35, 0x3D, 0x45, 0x4D}
_OTHER = {0x06, 0x16, 0x00, 0x80, 0x01, 0x81, 0x04, 0x0C, 0x14, 0x1C, 0x24, 0x2C,
          0x3C, 0x9C, 0x44, 0x4C, 0x54, 0x5C, 0xA4, 0xAC, 0x6C, 0x7C, 0x84, 0x05,
          0x07, 0x87}
OPCODES = frozenset(_LOADS) | _SCRATCH | _CONST_DIV | _CONST_SHIFT | _COND_JUMPS | _OTHER
_RETURNS = {0x06, 0x16}


def validate(insns: list[Insn] | tuple[Insn, ...]) -> None:
    """Checks a program as the kernel's classic BPF checker does: 1 to 4096
    instructions, known opcodes only, every jump forward and inside the
    program, scratch cells 0..15, no constant division by zero or shift by
    32 or more, and a return last (so every path ends in one). Packet loads
    are checked at run time: one past the packet's end rejects it."""
    n = len(insns)
    if not 1 <= n <= MAX_INSNS:
        raise BpfError(f"BPF program: {n} instructions (must be 1..{MAX_INSNS})")
    for pc, i in enumerate(insns):
        where = f"BPF program: instruction {pc} (code {i.code:#x})"
        if not (0 <= i.code <= 0xFFFF and 0 <= i.jt <= 255 and 0 <= i.jf <= 255
                and 0 <= i.k <= 0xFFFFFFFF):
            raise BpfError(f"{where}: field out of range")
        if i.code not in OPCODES:
            raise BpfError(f"{where}: unknown opcode")
        if i.code in _SCRATCH and i.k >= MEMWORDS:
            raise BpfError(f"{where}: scratch cell {i.k} (must be < {MEMWORDS})")
        if i.code in _CONST_DIV and i.k == 0:
            raise BpfError(f"{where}: division by zero")
        if i.code in _CONST_SHIFT and i.k >= 32:
            raise BpfError(f"{where}: shift by {i.k}")
        if i.code == 0x05 and pc + 1 + i.k >= n:
            raise BpfError(f"{where}: jump past the end")
        if i.code in _COND_JUMPS and pc + 1 + max(i.jt, i.jf) >= n:
            raise BpfError(f"{where}: jump past the end")
    if insns[-1].code not in _RETURNS:
        raise BpfError("BPF program: the last instruction is not a return")


def compile_expression(expression: str, linktype: int | str = DLT_EN10MB,
                       snaplen: int = SNAPLEN, optimize: bool = True,
                       codegen: bool = False) -> Filter:
    """Compiles a pcap-filter expression (tcpdump's syntax) for a link type;
    ``BpfError`` with libpcap's own message when it is not valid. With
    ``codegen`` the program is also translated to C and compiled (cached)
    instead of interpreted (see ``Filter.use_codegen``)."""
    if not isinstance(expression, str):
        raise BpfError(f"filter {expression!r}: expected a string")
    if "\0" in expression:
        raise BpfError("filter: contains a NUL character")
    dlt = linktype_value(linktype)
    pcap = libpcap()
    with _lock:
        handle = pcap.pcap_open_dead(dlt, snaplen)
        if handle == _ffi.NULL:
            raise BpfError(f"libpcap cannot open a handle for link type {dlt}")
        try:
            prog = _ffi.new("struct bpf_program *")
            if pcap.pcap_compile(handle, prog, expression.encode(), int(optimize),
                                 PCAP_NETMASK_UNKNOWN) != 0:
                message = _ffi.string(pcap.pcap_geterr(handle)).decode(errors="replace")
                raise BpfError(f"filter {expression!r}: {message}")
            try:
                insns = [Insn(prog.bf_insns[i].code, prog.bf_insns[i].jt,
                              prog.bf_insns[i].jf, prog.bf_insns[i].k)
                         for i in range(prog.bf_len)]
            finally:
                pcap.pcap_freecode(prog)
        finally:
            pcap.pcap_close(handle)
    f = Filter(insns, expression)
    if codegen:
        f.use_codegen()
    return f


class Filter:
    """A validated classic BPF program, ready to run natively and to attach
    in the kernel. ``expression`` is the text it came from, if any."""

    def __init__(self, insns: list[Insn] | tuple[Insn, ...], expression: str = "") -> None:
        self.insns = tuple(insns)
        validate(self.insns)
        self.expression = expression
        self.c = native_ffi.new("struct bpf_insn[]", len(self.insns))
        for slot, i in zip(self.c, self.insns, strict=True):
            slot.code, slot.jt, slot.jf, slot.k = i.code, i.jt, i.jf, i.k
        self.fn = native_ffi.NULL  # the compiled form, once use_codegen() made it

    def use_codegen(self) -> None:
        """Runs the program as C translated from it and compiled by the
        system's compiler (``bpf_codegen``; cached by content), instead of
        the interpreter; ``bpf_codegen.CodegenError`` without a compiler."""
        from snabbpy.lib import bpf_codegen

        self.fn = native_ffi.cast("bpf_match_fn", bpf_codegen.load(self.insns))

    @property
    def compiled(self) -> bool:
        """True when the program runs as compiled C, not interpreted."""
        return self.fn != native_ffi.NULL

    def __len__(self) -> int:
        return len(self.insns)

    def run(self, data: bytes | bytearray | memoryview) -> int:
        """The program's return value for one packet (0: rejected)."""
        buf = native_ffi.from_buffer("uint8_t[]", data)
        if self.compiled:
            return self.fn(buf, len(buf))
        return native_lib.bpf_run(self.c, buf, len(buf))

    def matches(self, data: bytes | bytearray | memoryview) -> bool:
        """True when the packet ``data`` (a whole frame) matches."""
        return self.run(data) != 0

    def match(self, mem: np.ndarray, offsets, lengths) -> np.ndarray:
        """A boolean mask: packet i is ``mem[offsets[i]:offsets[i]+lengths[i]]``
        (``mem`` a uint8 array, e.g. ``packet.memory()``). A packet reaching
        outside ``mem`` does not match."""
        if not isinstance(mem, np.ndarray) or mem.dtype != np.uint8 or mem.ndim != 1:
            raise TypeError("mem must be a one-dimensional uint8 numpy array")
        if not mem.flags.c_contiguous:
            raise TypeError("mem must be contiguous")
        off = np.ascontiguousarray(offsets, dtype=np.int64)
        lens = np.ascontiguousarray(lengths, dtype=np.int64)
        if off.shape != lens.shape or off.ndim != 1:
            raise ValueError("offsets and lengths must be 1-D arrays of one length")
        mask = np.zeros(len(off), dtype=np.bool_)
        if len(off):
            native_lib.bpf_match_array(
                self.c, self.fn, native_ffi.from_buffer("uint8_t[]", mem), mem.nbytes,
                native_ffi.from_buffer("int64_t[]", off), native_ffi.from_buffer("int64_t[]", lens),
                len(off), native_ffi.from_buffer("uint8_t[]", mask))
        return mask

    def filter_link(self, inp, out, rejected, counters) -> int:
        """Moves every packet of link ``inp`` to ``out`` (matching) or to
        ``rejected`` (not matching; freed when None), in C; adds the counts
        to ``counters[0]`` (passed) and ``counters[1]`` (rejected), a
        ``uint64_t *``. Takes cdata links; returns the packets moved."""
        return native_lib.bpf_filter_link(self.c, self.fn, inp, out,
                                          rejected or native_ffi.NULL, counters)

    def sock_fprog(self) -> tuple[bytes, ctypes.Array]:
        """``struct sock_fprog`` for this program and the buffer its pointer
        refers to (keep both alive while the kernel reads them)."""
        code = b"".join(struct.pack("=HBBI", i.code, i.jt, i.jf, i.k) for i in self.insns)
        buf = ctypes.create_string_buffer(code, len(code))
        return struct.pack("HxxxxxxP", len(self.insns), ctypes.addressof(buf)), buf

    def attach_socket(self, sock: socket.socket) -> None:
        """Attaches the program to a socket (SO_ATTACH_FILTER): the kernel
        drops what does not match before it is queued to us."""
        fprog, keep = self.sock_fprog()
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        del keep

    def attach_tap(self, fd: int) -> None:
        """Attaches the program to a TAP device's fd (TUNATTACHFILTER): the
        kernel drops non-matching frames it would hand to us."""
        fprog, keep = self.sock_fprog()
        fcntl.ioctl(fd, TUNATTACHFILTER, fprog)
        del keep
