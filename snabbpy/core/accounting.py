"""Who holds the packets: per-app packet accounting, and the misuses C refuses.

The engine runs every app method with ``packet_app`` set to the app's
*slot*, so C counts each allocation and free into that app's account. With
the counters of the app's links, an app's *balance* is::

    allocated + received (input links' rx) - sent (output links' tx) - freed

A running app's balance is what it holds now; once every app has stopped
(and freed what it owns, as the contract says), a positive balance is
packets the app lost. Packets dropped by a full link are freed inside the
transmit, so they count as freed, not as sent.

C also refuses, and records, a packet freed twice, freed or sent again
while a link holds it, or sent after it was freed (``packet.state``, see
core/packet.h). The engine looks at one word after every breath
(``alarm``) and turns a record into :class:`PacketFault`, which stops the
run, or into one warning when packet memory ran out.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from snabbpy.core import memory, packet
from snabbpy.core.native import ffi, lib

#: One word, nonzero when a fault or an exhaustion waits (read every breath).
alarm = ffi.cast("uint32_t *", ffi.addressof(lib, "packet_alarm"))
_current = ffi.cast("uint32_t *", ffi.addressof(lib, "packet_app"))
_free_slots = list(range(lib.PACKET_MAX_APPS - 1, 0, -1))  # 0 is "no app"

_MISUSES = {
    lib.PACKET_FAULT_FREED_TWICE: "freed twice",
    lib.PACKET_FAULT_FREED_ON_LINK: "freed while a link holds it (sent on, then freed)",
    lib.PACKET_FAULT_SENT_FREE: "sent on a link after it was freed",
    lib.PACKET_FAULT_SENT_TWICE: "sent on a link twice (a link holds it already)",
}


@dataclass(frozen=True)
class Fault:
    """A refused misuse of a packet: what, which packet, in which slot."""

    kind: str
    address: int
    slot: int
    count: int  # misuses refused since the last take (this is the first)

    @property
    def offset(self) -> int:
        """Where the packet lies in ``packet.memory()``."""
        return self.address - packet.memory_base()


def take_fault() -> Fault | None:
    """The first misuse since the last call (and clears the record)."""
    f = ffi.new("struct packet_fault *")
    if not lib.packet_take_fault(f):
        return None
    return Fault(_MISUSES.get(f.kind, f"misused ({f.kind})"), int(f.packet), f.app, f.count)


class PacketFault(Exception):
    """A packet was misused (see :class:`Fault`): the run stops."""

    def __init__(self, fault: Fault, app: str | None, cls: str | None) -> None:
        who = f"in app {app!r} ({cls})" if app else "outside any app"
        more = f" ({fault.count - 1:,} more misuses refused)" if fault.count > 1 else ""
        super().__init__(f"packet {fault.address:#x} (offset {fault.offset:#x} in packet "
                         f"memory) {fault.kind} {who}{more}")
        self.fault, self.app = fault, app


def _account(slot: int) -> tuple[int, int]:
    a = lib.packet_accounts[slot]
    return a.allocated, a.freed


class Accounts:
    """The packet accounts of one engine's apps, by app name."""

    def __init__(self, warn: Callable[[str], Any] | None = None) -> None:
        self.slots: dict[str, int] = {}
        # An engine dropped without stop() gives its slots back, too.
        self._release = weakref.finalize(self, _release, self.slots)
        self._base: dict[str, tuple[int, int]] = {}
        self._moved: dict[str, list[int]] = {}  # name -> [rx, tx] of removed links
        self.said_exhausted = False
        self.received: dict[str, int] = {}  # after close(): rx of the apps that lost
        self.warn = warn or (lambda line: print(f"snabbpy: warning: {line}", file=sys.stderr))

    def slot(self, name: str) -> int:
        """The app's slot (0 when all are taken: counted as no app's, and
        the app's balance is not known)."""
        if name not in self.slots:
            s = _free_slots.pop() if _free_slots else 0
            self.slots[name] = s
            self._base[name] = _account(s)
            self._moved[name] = [0, 0]
        return self.slots[name]

    @contextmanager
    def acting(self, name: str):
        """Counts what runs in the block as app ``name``'s."""
        _current[0] = self.slot(name)
        try:
            yield
        finally:
            _current[0] = 0

    def as_app(self, name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        """``fn`` (an app's pull, push or tick) counted as app ``name``'s."""
        s = self.slot(name)

        def call() -> Any:
            _current[0] = s
            try:
                return fn()
            finally:
                _current[0] = 0
        return call

    def drain(self, spec: Any, link: Any) -> None:
        """Frees a removed link's packets as its receiver's, and keeps the
        link's counts in the accounts of both ends."""
        with self.acting(spec.to_app):
            link.drain()
        s = link.stats()
        self._moved.setdefault(spec.from_app, [0, 0])[1] += s["txpackets"]
        self._moved.setdefault(spec.to_app, [0, 0])[0] += s["rxpackets"]

    def balances(self, links: dict[str, Any] | None = None,
                 specs: dict[str, Any] | None = None) -> dict[str, int]:
        """Each app's balance (see the module doc), counting ``links``
        (spec -> Link) by ``specs`` (spec -> LinkSpec) as well."""
        moved = {n: list(v) for n, v in self._moved.items()}
        for spec, link in (links or {}).items():
            ls, s = specs[spec], link.stats()
            moved.setdefault(ls.from_app, [0, 0])[1] += s["txpackets"]
            moved.setdefault(ls.to_app, [0, 0])[0] += s["rxpackets"]
        out = {}
        for name, s in self.slots.items():
            if not s:
                continue
            allocated, freed = _account(s)
            base_allocated, base_freed = self._base[name]
            rx, tx = moved.get(name, (0, 0))
            out[name] = (allocated - base_allocated) + rx - tx - (freed - base_freed)
        return out

    def check(self, engine: Any) -> None:
        """Acts on the alarm: one warning when packet memory ran out (with
        the app that holds the most), PacketFault on a misuse."""
        fault = take_fault()
        s = packet.stats()
        if s["exhausted"] and not self.said_exhausted:
            self.said_exhausted = True
            self.warn(self.exhausted_line(engine, s))
        if fault is not None:
            raise self.fault(engine, fault)

    def fault(self, engine: Any, fault: Fault) -> PacketFault:
        """The PacketFault for ``fault``, naming the app of its slot."""
        name = next((n for n, s in self.slots.items() if s == fault.slot and s), None)
        app = engine.apps.get(name) if name else None
        return PacketFault(fault, name, type(app).__name__ if app is not None else "stopped")

    def exhausted_line(self, engine: Any, s: dict[str, int]) -> str:
        """"packet memory exhausted ...": how much, who holds the most."""
        held = self.balances(engine.links, engine.config.links)
        line = (f"packet memory exhausted: all {s['created']:,} packets "
                f"({s['created'] * packet.STRIDE / 2**30:.1f} GiB) are in use")
        if held:
            top = max(held, key=held.get)
            line += f"; app {top!r} holds the most ({held[top]:,})"
        asked = next((n for n, v in self.slots.items() if v == s["exhausted_app"] and v), None)
        if asked:
            line += f"; app {asked!r} was refused one first"
        return line + memory.limit_hint()

    def close(self) -> dict[str, int]:
        """Once every app has stopped and every link is gone: the packets
        each app lost (only those that lost some). Frees the slots."""
        lost = {n: b for n, b in self.balances().items() if b > 0}
        self.received = {n: self._moved[n][0] for n in lost}
        _release(self.slots)
        return lost


def _release(slots: dict[str, int]) -> None:
    """Gives ``slots`` back to the pool and empties it."""
    _free_slots.extend(s for s in slots.values() if s)
    slots.clear()


def lost_line(name: str, count: int, received: int) -> str:
    """The end-of-run line for an app that lost ``count`` packets, having
    received ``received`` from links."""
    how = "received" if received >= count else "allocated or received"
    return f"app {name!r} {how} {count:,} packets it never sent on or freed"
