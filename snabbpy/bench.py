"""Benchmarks: `snabbpy bench NAME`."""

from __future__ import annotations

import time

from snabbpy.apps.basic.basic1 import basic1 as basic1_graph
from snabbpy.core.engine import Engine


def basic1(npackets: int, size: int = 60) -> tuple[int, float]:
    """Snabb's basic1: Source -> Tee -> Sink (two links into one sink).
    Runs until the source has sent ``npackets``; returns (packets, seconds)."""
    engine = Engine()
    engine.configure(basic1_graph(size))
    counters = engine.links["source.output -> tee.input"].counters
    pointer, index = counters.pointer, counters.index["txpackets"]
    start = time.perf_counter()
    engine.main(done=lambda: pointer[index] >= npackets)
    elapsed = time.perf_counter() - start
    sent = pointer[index]
    engine.stop()
    return sent, elapsed


def format_rate(packets: int, seconds: float) -> str:
    """Snabb's wording: 'Processed X million packets in Y seconds (rate: Z Mpps).'"""
    return (
        f"Processed {packets / 1e6:.1f} million packets in {seconds:.2f} seconds "
        f"(rate: {packets / seconds / 1e6:.2f} Mpps)."
    )
