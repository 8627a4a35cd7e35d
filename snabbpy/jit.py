"""JIT-compiled packet code: a per-packet loop in plain Python, compiled by
numba, working directly on packet memory.

A *kernel* is a plain function of numpy arrays::

    from snabbpy import jit

    @jit.kernel
    def macswap(mem, offsets, lengths, out):
        for k in range(offsets.shape[0]):
            if lengths[k] < 12:
                out[k] = -1          # drop runts
                continue
            o = offsets[k]
            for j in range(6):
                a = mem[o + j]
                mem[o + j] = mem[o + 6 + j]
                mem[o + 6 + j] = a
            out[k] = 0

called on a batch as ``macswap(packet.memory(), b.offsets, b.lengths, out)``.
``mem`` is ``packet.memory()`` itself (a numpy array over all packet
memory, no copy), ``offsets``/``lengths`` the batch's arrays; a kernel may
write ``lengths[k]`` (written back to the packet when the batch is sent).
Because a kernel is only numpy arrays, ``numba.njit`` works as well as
``jit.kernel``; ``kernel`` adds compiling once, eagerly, at app start
(``Kernel.compile()``), and a clear error without numba.

The helpers below (``payload``, ``load16be``, ``store16be`` ...) are numba
functions to call from inside kernels. :class:`KernelApp` is a base class
for an app whose whole work is one kernel deciding each packet's output;
each of its breaths is one compiled call (:mod:`snabbpy.jit_breath`).

numba is an optional extra: without it, using any of this raises
:class:`JitUnavailable` naming the extra to install.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from snabbpy.core import packet
from snabbpy.core.app import App
from snabbpy.core.config import ConfigError

try:
    import numba
except ImportError:  # an optional extra
    numba = None

INSTALL = "pip install -e '.[jit]'"


class JitUnavailable(ConfigError):
    """numba is not installed (a ConfigError: ``snabbpy run`` exits 2)."""


def available() -> bool:
    """True if numba is installed."""
    return numba is not None


def require():
    """Returns the numba module, or raises JitUnavailable in one line."""
    if numba is None:
        raise JitUnavailable(f"JIT apps need numba, which is not installed: {INSTALL}")
    return numba


# -- helpers for inside kernels ----------------------------------------------


def _payload(mem, offsets, lengths, k):
    return mem[offsets[k]:offsets[k] + lengths[k]]


def _length(lengths, k):
    return lengths[k]


def _set_length(lengths, k, n):
    lengths[k] = n


def _offset(offsets, k):
    return offsets[k]


def _load16be(mem, at):
    return (np.uint16(mem[at]) << np.uint16(8)) | np.uint16(mem[at + 1])


def _load32be(mem, at):
    return ((np.uint32(mem[at]) << np.uint32(24)) | (np.uint32(mem[at + 1]) << np.uint32(16))
            | (np.uint32(mem[at + 2]) << np.uint32(8)) | np.uint32(mem[at + 3]))


def _store16be(mem, at, v):
    mem[at] = (v >> 8) & 0xFF
    mem[at + 1] = v & 0xFF


def _store32be(mem, at, v):
    mem[at] = (v >> 24) & 0xFF
    mem[at + 1] = (v >> 16) & 0xFF
    mem[at + 2] = (v >> 8) & 0xFF
    mem[at + 3] = v & 0xFF


def _checksum_adjust(mem, at, old, new):
    # RFC 1624 equation 3: HC' = ~(~HC + ~m + m')
    hc = (np.uint32(mem[at]) << np.uint32(8)) | np.uint32(mem[at + 1])
    s = (~hc & 0xFFFF) + (~np.uint32(old) & 0xFFFF) + (np.uint32(new) & 0xFFFF)
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    c = ~s & 0xFFFF
    mem[at] = (c >> 8) & 0xFF
    mem[at + 1] = c & 0xFF


def _unavailable(name: str) -> Callable[..., Any]:
    def helper(*_args: Any) -> Any:
        require()
    helper.__name__ = name
    helper.__doc__ = f"{name}: needs numba ({INSTALL})."
    return helper


_HELPERS = {
    "payload": (_payload, "The payload of packet k as a view of ``mem``."),
    "length": (_length, "The length of packet k."),
    "set_length": (_set_length, "Sets the length of packet k (written back when sent)."),
    "offset": (_offset, "Where packet k's payload starts in ``mem``."),
    "load16be": (_load16be, "The big-endian 16-bit word at ``mem[at]``."),
    "load32be": (_load32be, "The big-endian 32-bit word at ``mem[at]``."),
    "store16be": (_store16be, "Writes a big-endian 16-bit word at ``mem[at]``."),
    "store32be": (_store32be, "Writes a big-endian 32-bit word at ``mem[at]``."),
    "checksum_adjust": (_checksum_adjust, "RFC 1624 update of the checksum at ``mem[at]`` "
                        "for a 16-bit word changed from ``old`` to ``new``."),
}

for _name, (_fn, _doc) in _HELPERS.items():
    _fn.__doc__ = _doc
    globals()[_name] = (numba.njit(inline="always")(_fn) if numba is not None
                        else _unavailable(_name))

payload: Callable[..., Any]
length: Callable[..., Any]
set_length: Callable[..., Any]
offset: Callable[..., Any]
load16be: Callable[..., Any]
load32be: Callable[..., Any]
store16be: Callable[..., Any]
store32be: Callable[..., Any]
checksum_adjust: Callable[..., Any]


# -- kernels -----------------------------------------------------------------


class Kernel:
    """A user's kernel, compiled with numba once (``compile``, or at the
    first call). Call it like the function it wraps."""

    def __init__(self, fn: Callable[..., Any], **options: Any) -> None:
        self.fn = fn
        self.options = {"nogil": True, **options}
        self._compiled: Any = None
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", "kernel")

    def compile(self, *extra: Any) -> Kernel:
        """Compiles now for (memory, int64 offsets, int32 lengths, *extra),
        by running the kernel on an empty batch: ``extra`` are example
        further arguments (what the app will pass)."""
        if self._compiled is None:
            self._compiled = require().njit(**self.options)(self.fn)
        self._compiled(packet.memory(), np.empty(0, np.int64), np.empty(0, np.int32), *extra)
        return self

    @property
    def compiled(self) -> Any:
        """The numba dispatcher (compiled on first use)."""
        if self._compiled is None:
            self._compiled = require().njit(**self.options)(self.fn)
        return self._compiled

    def __call__(self, *args: Any) -> Any:
        return self.compiled(*args)


def kernel(fn: Callable[..., Any] | None = None, **options: Any):
    """Decorator: ``@kernel`` or ``@kernel(fastmath=True)`` (options go to
    ``numba.njit``). Raises JitUnavailable without numba."""
    require()
    if fn is None:
        return lambda f: Kernel(f, **options)
    return Kernel(fn, **options)


class KernelApp(App):
    """An app whose work is one kernel per batch: for each input batch it
    calls ``self.kernel(mem, offsets, lengths, out, *self.kernel_args())``,
    where ``out`` (int64, one per packet, preset to 0) is to be filled with
    the index of the output port each packet goes to (ports in the order
    configured) or -1 to drop it; then the batch is split accordingly.

    Receiving, the kernel and the split run as ONE compiled call per input
    per breath (:mod:`snabbpy.jit_breath`), as a Snabb Lua app's push is
    machine code throughout. With one output, only what it has room for is
    received (the rest waits on the input); a batch holds at most
    ``batch_size`` packets.

    A subclass sets ``kernel`` (a :class:`Kernel` or numba function) and may
    override ``kernel_args``. The kernel is compiled when the app starts.
    """

    kernel: ClassVar[Any] = None
    counters = ("packets", "dropped")
    #: packets per kernel call
    batch_size: ClassVar[int] = 1023

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__(conf)
        require()
        if self.kernel is None:
            raise ConfigError(f"{type(self).__name__}: a KernelApp must set 'kernel'")
        from snabbpy.jit_breath import Breath

        k = type(self).kernel
        fn = k.compiled if isinstance(k, Kernel) else k
        self._breath = Breath(fn, most=self.batch_size).compile(*self.kernel_args())

    def kernel_args(self) -> tuple:
        """Further arguments of the kernel (tables, counters): override."""
        return ()

    def link(self) -> None:
        """Takes the output links in port order, for every input."""
        self._outs = list(self.output.values())
        self._ports = [self._breath.ports(i, self._outs) for i in self.input.values()]

    def push(self) -> None:
        """Runs the kernel on each input's packets and sends them on."""
        if not hasattr(self, "_ports"):
            self.link()
        args, most = self.kernel_args(), self.batch_size
        packets = dropped = 0
        for ports in self._ports:
            while True:
                n, d = self._breath(ports, *args)
                packets, dropped = packets + n - d, dropped + d
                if n < most or not n:
                    break
        if packets or dropped:
            self.stats.add("packets", packets)
            self.stats.add("dropped", dropped)
