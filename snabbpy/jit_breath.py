"""A whole breath of a JIT app in one compiled call.

A kernel works on one batch (``kernel(mem, offsets, lengths, index,
*args)``: see :mod:`snabbpy.jit`). Calling it from Python costs a receive,
a numba dispatch and a split, each a crossing into C; a Snabb Lua app pays
none of them. :func:`breath` compiles, around the user's kernel, one numba
function that receives the batch from a link, runs the kernel and splits
the packets over the output links, calling snabbpy's C batch functions
(``snabbpy/core/batch.c``) directly through their addresses. So a breath of
a JIT app is one call from Python, the rest runs as machine code.

The same rules hold as for a :class:`~snabbpy.core.batch.Batch`: a length
the kernel wrote that does not fit, or an index outside ``-1 ..
len(links) - 1``, sends nothing; the batch is freed (no leak) and
:meth:`Breath.__call__` raises ``BatchError`` naming the packet. A kernel
that raises has its batch freed too, and the exception goes on.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import numpy as np

from snabbpy.core import packet
from snabbpy.core.batch import BatchError
from snabbpy.core.native import ffi, lib

_U64, _I32 = ctypes.c_uint64, ctypes.c_int32


def _bind(name: str, restype: Any, *argtypes: Any) -> Any:
    """The C function ``name`` of snabbpy's core as a ctypes function,
    which numba calls from compiled code (pointers pass as uint64)."""
    address = int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


c_receive = _bind("batch_receive", _I32, _U64, _U64, _I32, _U64, _U64, _U64, _U64)
c_split = _bind("batch_split", _I32, _U64, _I32, _U64, _U64, _I32, _U64, _U64)
c_free = _bind("batch_free", None, _U64, _I32)
c_nreadable = _bind("link_nreadable", _I32, _U64)
c_nwritable = _bind("link_nwritable", _I32, _U64)


def address(link) -> int:
    """The address of a :class:`~snabbpy.core.link.Link`'s C struct."""
    return int(ffi.cast("uintptr_t", link.c))


def _driver(numba: Any, kernel: Callable[..., Any], preset: int) -> Any:
    """The compiled breath around ``kernel`` (itself numba-compiled)."""

    @numba.njit
    def run(mem, rx, links, most, pk, offs, lens, was, index, held, *args):
        m = min(c_nreadable(rx), most)
        if len(links) == 1:
            m = min(m, c_nwritable(links[0]))  # what does not fit waits
        n = c_receive(rx, pk.ctypes.data, m, mem.ctypes.data, offs.ctypes.data,
                      lens.ctypes.data, was.ctypes.data)
        held[0] = n  # if the kernel raises, Python frees these
        index[:n] = preset
        kernel(mem, offs[:n], lens[:n], index[:n], *args)
        if len(links) == 0:
            index[:n] = -1
        dropped = 0
        for k in range(n):
            if index[k] < 0:
                dropped += 1
        r = c_split(pk.ctypes.data, n, index.ctypes.data, links.ctypes.data, len(links),
                    lens.ctypes.data, was.ctypes.data)
        if r < 0:
            c_free(pk.ctypes.data, n)
        held[0] = 0
        return n, dropped, r

    return run


#: (kernel, preset) -> its compiled breath
_DRIVERS: dict[tuple[Any, int], Any] = {}


class Breath:
    """``kernel`` run on up to ``most`` packets of one input link per call,
    the packets then split over output links by the index the kernel
    wrote (``index`` is preset to ``preset`` for each packet).

    ``compile(*args)`` compiles for the kernel's further arguments, at app
    start; ``breath(breath.ports(input_link, output_links), *args)`` then
    returns ``(received, dropped)``."""

    def __init__(self, kernel: Callable[..., Any], most: int = lib.LINK_MAX_PACKETS,
                 preset: int = 0) -> None:
        import numba  # the caller checked that it is there: jit.require()

        run = _DRIVERS.get((kernel, preset))
        if run is None:  # compiled once per kernel, however many apps use it
            compiled = kernel if hasattr(kernel, "py_func") else numba.njit(kernel)
            run = _DRIVERS[(kernel, preset)] = _driver(numba, compiled, preset)
        self._run = run
        self.most = most
        size = max(most, 1)
        self._pk = np.zeros(size, np.uint64)
        self._offs = np.zeros(size, np.int64)
        self._lens = np.zeros(size, np.int32)
        self._was = np.zeros(size, np.int32)
        self._index = np.zeros(size, np.int64)
        self._held = np.zeros(1, np.int64)

    def compile(self, *args: Any) -> Breath:
        """Compiles now (on an empty link) for further arguments like ``args``."""
        from snabbpy.core.link import Link

        self(self.ports(Link("compile"), []), *args)
        return self

    @staticmethod
    def ports(rx, links) -> Ports:
        """The input link and output links of calls, taken once (at an
        app's ``link()``)."""
        return Ports(rx, list(links))

    def __call__(self, ports: Ports, *args: Any) -> tuple[int, int]:
        """Receives from ``ports.rx``, runs the kernel, splits over
        ``ports.links``; returns (received, dropped)."""
        try:
            n, dropped, r = self._run(packet.memory(), ports.rx_address, ports.addresses,
                                      self.most, self._pk, self._offs, self._lens, self._was,
                                      self._index, self._held, *args)
        except Exception:
            # the kernel raised (or its arguments did not type): no leak
            held, self._held[0] = int(self._held[0]), 0
            lib.batch_free(ffi.cast("struct packet **", self._pk.ctypes.data), held)
            raise
        if r < 0:
            k, nlinks = -r - 1, len(ports.addresses)
            if not -1 <= self._index[k] < nlinks:
                raise BatchError(f"split: packet {k} has index {int(self._index[k])}, "
                                 f"not -1..{nlinks - 1} (the batch was freed)")
            raise BatchError(f"split: packet {k} (length {int(self._lens[k])}) does not "
                             f"allow it (the batch was freed)")
        return n, dropped


class Ports:
    """An input link and output links, with their C addresses (the links
    are kept alive as long as their addresses are in use)."""

    __slots__ = ("rx", "links", "rx_address", "addresses")

    def __init__(self, rx, links: list) -> None:
        self.rx, self.links = rx, links
        self.rx_address = address(rx)
        self.addresses = np.array([address(l) for l in links], np.uint64)
