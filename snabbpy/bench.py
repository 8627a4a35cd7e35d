"""Benchmarks: `snabbpy bench NAME`."""

from __future__ import annotations

import re
import time
from decimal import Decimal

from snabbpy.apps.basic.basic1 import basic1 as basic1_graph
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine

_DECIMAL = re.compile(r"\+?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_HEX = re.compile(r"\+?0[xX][0-9a-fA-F]+")


def parse_count(option: str, text: str) -> int:
    """A count written as Snabb's snabbmark takes it (Lua's tonumber):
    ``30e6``, ``1e9``, ``2.5e6``, ``5000000``, ``0x1000``. It must come to
    a whole number of at least 1; anything else is a ConfigError naming
    ``option``."""
    word = text.strip()
    if _HEX.fullmatch(word):
        value = Decimal(int(word, 16))
    elif _DECIMAL.fullmatch(word):
        value = Decimal(word)
    else:
        raise ConfigError(f"{option} {text!r}: not a number (write e.g. 30e6 or 30000000)")
    if value > 2**64 - 1:  # before anything else: 1e999999999 must stay cheap
        raise ConfigError(f"{option} {text!r}: more than a 64-bit counter holds")
    if value != value.to_integral_value():
        raise ConfigError(f"{option} {text!r}: not a whole number")
    if value < 1:
        raise ConfigError(f"{option} {text!r}: must be at least 1")
    return int(value)


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
