#!/usr/bin/env python3
"""filter.PcapFilter against Snabb's PcapFilter (pflua), same expressions,
same packets, same run: for each expression, runs of
PcapReader -> Repeater -> PcapFilter -> Sink alternate between snabbpy and
Snabb; prints the median Mpps of each (packets into the filter per second)
and their ratio. snabbpy runs twice per round: with the program compiled to
C (PcapFilter's default, the ratio's numerator) and interpreted.

    scripts/bench-filter.py [--snabb PATH/TO/snabb] [--rounds 5] [--seconds 2]

The packets are the filter tests' crafted mix (tests/filter_frames.py):
IPv4/IPv6 TCP, UDP, ICMP, ARP, VLAN, short frames. The Snabb side is a snsh
script written to a temporary directory; Snabb itself is never copied here.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from filter_frames import frames  # noqa: E402

from snabbpy.lib import pcap  # noqa: E402

EXPRESSIONS = [
    "tcp",
    "ip",
    "tcp port 80",
    "tcp port 80 and not src net 10.0.0.0/8",
    "host 192.168.1.10 or host 8.8.8.8",
    "vlan and tcp port 80",  # pflua cannot compile this one: shown as n/a
    "ip6 and tcp port 443",
    "tcp[13] & 2 != 0",
    "portrange 1000-6000",
    "len > 200",
    "ether broadcast",
    "not ip and not ip6",
]
RATE = re.compile(r"rate: ([\d.]+) Mpps")

SNABBPY = """
import sys, time
from snabbpy.core import config
from snabbpy.core.engine import Engine
path, expr, seconds, codegen = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"
c = config.new()
config.app(c, "src", "pcap.PcapReader", {"path": path})
config.app(c, "rep", "basic.Repeater")
config.app(c, "filter", "filter.PcapFilter", {"filter": expr, "codegen": codegen})
config.app(c, "sink", "basic.Sink")
config.link(c, "src.output -> rep.input")
config.link(c, "rep.output -> filter.input")
config.link(c, "filter.output -> sink.input")
e = Engine()
e.configure(c)
counters = e.links["rep.output -> filter.input"].counters
e.main(duration=0.3)
before, start = counters["rxpackets"], time.perf_counter()
e.main(duration=seconds)
n, elapsed = counters["rxpackets"] - before, time.perf_counter() - start
e.stop()
print(f"rate: {n / elapsed / 1e6:.3f} Mpps")
"""

SNSH = """
local config = require("core.config")
local engine = require("core.app")
local counter = require("core.counter")
local pcap = require("apps.pcap.pcap")
local basic = require("apps.basic.basic_apps")
local pf = require("apps.packet_filter.pcap_filter")
local path, expr, seconds = main.parameters[1], main.parameters[2], tonumber(main.parameters[3])
local c = config.new()
config.app(c, "src", pcap.PcapReader, path)
config.app(c, "rep", basic.Repeater)
config.app(c, "filter", pf.PcapFilter, {filter = expr})
config.app(c, "sink", basic.Sink)
config.link(c, "src.output -> rep.input")
config.link(c, "rep.output -> filter.input")
config.link(c, "filter.output -> sink.input")
engine.configure(c)
engine.main({duration = 0.3, no_report = true})
local l = engine.app_table.filter.input.input
local before, start = tonumber(counter.read(l.stats.rxpackets)), engine.now()
engine.main({duration = seconds, no_report = true})
local n = tonumber(counter.read(l.stats.rxpackets)) - before
print(("rate: %.3f Mpps"):format(n / (engine.now() - start) / 1e6))
"""


def rate_of(cmd: list[str], env: dict | None = None, may_fail: bool = False) -> float | None:
    """Runs one side and returns the Mpps it printed (None when it failed
    and ``may_fail``: pflua does not support every expression)."""
    out = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env,
                         timeout=300)
    m = RATE.search(out.stdout)
    if (out.returncode or not m) and may_fail:
        return None
    if out.returncode or not m:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snabb", help="path to a built snabb binary")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--expression", action="append", help="only these (repeatable)")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory(prefix="bench-filter-") as tmp:
        capture = Path(tmp) / "mix.pcap"
        payloads = frames(1000)
        capture.write_bytes(pcap.build_file(
            [(pcap.RecordHeader(i, 0, len(p), len(p)), p) for i, p in enumerate(payloads)]))
        script = Path(tmp) / "pcap_filter_bench.lua"
        script.write_text(SNSH)
        print(f"{len(payloads)} packets, {args.rounds} interleaved rounds of {args.seconds} s;"
              " median Mpps into the filter")
        print(f"{'expression':42} {'snabbpy':>8} {'interp':>8} {'snabb':>8} {'ratio':>6}")
        for expr in args.expression or EXPRESSIONS:
            ours, interp, theirs = [], [], []
            for _ in range(args.rounds):
                for codegen, rates in (("1", ours), ("0", interp)):
                    rates.append(rate_of([sys.executable, "-c", SNABBPY, str(capture), expr,
                                          str(args.seconds), codegen], env))
                if args.snabb:
                    theirs.append(rate_of([args.snabb, "snsh", str(script), str(capture),
                                           expr, str(args.seconds)], may_fail=True))
            a, i = statistics.median(ours), statistics.median(interp)
            valid = [t for t in theirs if t is not None]
            if valid:
                b = statistics.median(valid)
                print(f"{expr:42} {a:8.2f} {i:8.2f} {b:8.2f} {a / b:5.2f}x", flush=True)
            else:
                print(f"{expr:42} {a:8.2f} {i:8.2f} {'n/a':>8} {'-':>6}", flush=True)


if __name__ == "__main__":
    main()
