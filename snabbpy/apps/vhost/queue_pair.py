"""One queue pair of a VhostUser device: its ports, counters and data path.

Queue pair k is rings 2k (the guest's receive queue: ``input`` port to
guest) and 2k+1 (its transmit queue: guest to ``output`` port). Pair 0 uses
the ports ``input``/``output`` and the counters ``rxq_*``/``txq_*``, as a
one-queue device always has; pair k > 0 uses ``input<k>``/``output<k>`` and
``rxq<k>_*``/``txq<k>_*``. Each ring's ``struct dr_stats`` lives inside the
app's counters, so the C ring code counts straight into them.
"""

from __future__ import annotations

from snabbpy.core.native import ffi, lib

from .vring import STATS, Vring


def counter_prefixes(pair: int) -> tuple[str, str]:
    """(receive ring prefix, transmit ring prefix) of ``pair``'s counters."""
    return ("rxq", "txq") if pair == 0 else (f"rxq{pair}", f"txq{pair}")


def pair_counters(pair: int) -> tuple[str, ...]:
    """Every counter of ``pair``: both rings' ``dr_stats``, then the drops
    of packets that came for a receive ring that was not running."""
    rx, tx = counter_prefixes(pair)
    return (tuple(f"{rx}_{n}" for n in STATS) + tuple(f"{tx}_{n}" for n in STATS)
            + (f"{rx}_drop_not_ready",))


def ring_stats(counters, pair: int) -> tuple[object, object]:
    """The two ``struct dr_stats *`` of ``pair`` inside ``counters``."""
    base = ffi.cast("uint64_t *", counters.pointer)
    return tuple(ffi.cast("struct dr_stats *", base + counters.index[f"{p}_packets"])
                 for p in counter_prefixes(pair))


class QueuePair:
    """The data path of pair ``index``: ``rx``/``tx`` are its rings;
    ``link()`` gives it the ``struct link *`` of its ports (or NULL).
    ``named_as``: the pair whose counter names ``counters`` has (default
    ``index``; 0 for an app serving one pair, a VhostQueue)."""

    def __init__(self, index: int, rx: Vring, tx: Vring, counters,
                 named_as: int | None = None) -> None:
        self.index, self.rx, self.tx, self.counters = index, rx, tx, counters
        names = index if named_as is None else named_as
        self.drop_counter = f"{counter_prefixes(names)[0]}_drop_not_ready"
        self.input = self.output = ffi.NULL

    def link(self, input_c, output_c) -> None:
        """The links of this pair's ports (``ffi.NULL`` when not linked)."""
        self.input, self.output = input_c, output_c

    def pull(self) -> None:
        """Guest transmit ring -> ``output`` (discarded while disabled)."""
        tx = self.tx
        if tx.q.ready:
            tx.tx_fn(tx.q, self.output if tx.enabled else ffi.NULL, lib.LINK_MAX_PACKETS)
            if tx.q.interrupt:
                tx.interrupt()

    def push(self, active: bool) -> None:
        """``input`` -> guest receive ring; freed and counted when the ring
        is not running or the driver does not use this pair (not ``active``)."""
        if self.input == ffi.NULL:
            return
        rx = self.rx
        if active and rx.q.ready and rx.enabled and not rx.q.broken:
            rx.rx_fn(rx.q, self.input, lib.LINK_MAX_PACKETS)
            if rx.q.interrupt:
                rx.interrupt()
        elif not lib.link_empty(self.input):
            self.counters.add(self.drop_counter, lib.link_free_all(self.input))

    def state(self, vring: Vring) -> str:
        """"running", "started", "stopped" or "broken" for one of its rings."""
        if vring.q.broken:
            return "broken (bad avail idx)"
        return "running" if vring.running else "started" if vring.started else "stopped"
