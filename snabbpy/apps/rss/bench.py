"""Benchmark of RSS: ``python3 -m snabbpy.apps.rss.bench [--runs N] [--seconds S]``.

Measures the packets per second through ``rss.input`` in
  - Flows (1024 UDP flows, both ways, 64 bytes) -> RSS -> 2 Sinks,
  - Source (one 60-byte frame of zeros) -> RSS -> 2 Sinks,
  - Flows -> basic.Split -> 2 Sinks (the same graph with no hashing),
  - Snabb's apps.rss (the reference) on the same 2048 frames
    (PcapReader -> Repeater -> rss -> 2 Sinks), when Snabb is built,
in interleaved runs, and prints the median of each and the ratios."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from snabbpy.core import config
from snabbpy.core.engine import Engine
from snabbpy.lib import pcap

SNABB = Path(os.environ.get("SNABB", "/root/.cache/snabb-ref/src/snabb"))

SNABB_SCRIPT = """
local config = require("core.config")
local engine = require("core.app")
local basic = require("apps.basic.basic_apps")
local pcap = require("apps.pcap.pcap")
local rss = require("apps.rss.rss").rss
local counter = require("core.counter")
local c = config.new()
config.app(c, "pcap", pcap.PcapReader, "{path}")
config.app(c, "rep", basic.Repeater)
config.app(c, "rss", rss, {{}})
config.app(c, "s1", basic.Sink)
config.app(c, "s2", basic.Sink)
config.link(c, "pcap.output -> rep.input")
config.link(c, "rep.output -> rss.input")
config.link(c, "rss.default_1 -> s1.input")
config.link(c, "rss.default_2 -> s2.input")
engine.configure(c)
engine.main({{duration = 0.3}})
local stats = engine.app_table.rss.input.input.stats
local before, t0 = counter.read(stats.rxpackets), engine.now()
engine.main({{duration = {seconds}}})
local n, t1 = counter.read(stats.rxpackets) - before, engine.now()
print(string.format("%f", tonumber(n) / (t1 - t0)))
"""


def graph(source: str, spreader: str) -> config.Config:
    """source -> spreader -> two sinks."""
    c = config.new()
    if source == "flows":
        config.app(c, "gen", config.resolve_class("rss.Flows"), {"flows": 1024, "size": 64})
    else:
        config.app(c, "gen", config.resolve_class("basic.Source"), {"size": 60})
    config.app(c, "spread", config.resolve_class(spreader), {})
    config.app(c, "sink0", config.resolve_class("basic.Sink"), {})
    config.app(c, "sink1", config.resolve_class("basic.Sink"), {})
    config.link(c, "gen.output -> spread.input")
    config.link(c, "spread.out0 -> sink0.input")
    config.link(c, "spread.out1 -> sink1.input")
    return c


def run_snabbpy(source: str, spreader: str, seconds: float) -> float:
    """Packets per second into the spreader, after a short warm-up."""
    engine = Engine()
    engine.configure(graph(source, spreader))
    counters = engine.links["gen.output -> spread.input"].counters
    engine.main(duration=0.3)
    before, start = counters["rxpackets"], time.perf_counter()
    engine.main(duration=seconds)
    rate = (counters["rxpackets"] - before) / (time.perf_counter() - start)
    engine.stop()
    return rate


def flows_pcap(path: Path) -> None:
    """Writes the frames rss.Flows makes (same seed and size) to ``path``."""
    from snabbpy.apps.rss.flows import Flows

    gen = Flows({"flows": 1024, "size": 64, "seed": 1})
    frames = list(gen.frames)
    path.write_bytes(pcap.build_file([(pcap.RecordHeader(0, 0, len(f), len(f)), f)
                                      for f in frames]))


def run_snabb(path: Path, seconds: float) -> float:
    """Packets per second into Snabb's rss app."""
    script = path.with_suffix(".lua")
    script.write_text(SNABB_SCRIPT.format(path=path, seconds=seconds))
    out = subprocess.run([str(SNABB), "snsh", str(script)], capture_output=True, text=True,
                         timeout=120 + 2 * seconds, check=True)
    return float(out.stdout.split()[-1])


def main() -> None:
    """Runs the cases interleaved and prints medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    cases = {
        "Flows -> RSS -> 2 Sinks": lambda: run_snabbpy("flows", "rss.RSS", args.seconds),
        "Source -> RSS -> 2 Sinks": lambda: run_snabbpy("source", "rss.RSS", args.seconds),
        "Flows -> Split -> 2 Sinks": lambda: run_snabbpy("flows", "basic.Split", args.seconds),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if SNABB.exists():
            path = Path(tmp) / "flows.pcap"
            flows_pcap(path)
            cases["Snabb apps.rss (same frames)"] = lambda: run_snabb(path, args.seconds)
        else:
            print(f"no Snabb at {SNABB}: reference skipped")
        rates: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, run in cases.items():
                rates[name].append(run())
    medians = {name: statistics.median(r) for name, r in rates.items()}
    ours = medians["Flows -> RSS -> 2 Sinks"]
    for name, r in rates.items():
        runs = ", ".join(f"{x / 1e6:.2f}" for x in r)
        print(f"{name:30} median {medians[name] / 1e6:6.2f} Mpps  "
              f"(ratio Flows->RSS / this: {ours / medians[name]:.2f})  runs: {runs}")


if __name__ == "__main__":
    main()
