#!/usr/bin/env python3
"""pcap and pcapng read and write rates: `snabbpy run` of PcapReader -> Sink
(a file of 60-byte packets, looped) and Source -> PcapWriter (to
/dev/null, so the figure is the app's, not the disk's), for classic pcap
and pcapng; with --snabb, Snabb's PcapReader/PcapWriter on the same file in
the same rounds (classic pcap only: Snabb has no pcapng). Rounds are
interleaved; prints every rate and the median of each.

    scripts/bench-pcap.py [--snabb PATH/TO/snabb] [--rounds 5] [--duration 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from snabbpy.core.spawn import snabbpy_command

SNABBPY = snabbpy_command()

SNABB_READ = """
local c = config.new()
config.app(c, "r", require("apps.pcap.pcap").PcapReader, "{path}")
config.app(c, "s", require("apps.basic.basic_apps").Sink)
config.link(c, "r.output -> s.input")
engine.configure(c)
local t0 = engine.now()
engine.main({{done = function () return engine.app_table.r.done end}})
local n = link.stats(engine.app_table.s.input.input).rxpackets
print(("rate: %.3f Mpps"):format(tonumber(n) / (engine.now() - t0) / 1e6))
"""

SNABB_WRITE = """
local c = config.new()
config.app(c, "src", require("apps.basic.basic_apps").Source, 60)
config.app(c, "w", require("apps.pcap.pcap").PcapWriter, "/dev/null")
config.link(c, "src.output -> w.input")
engine.configure(c)
local t0 = engine.now()
engine.main({{duration = {duration}}})
local n = link.stats(engine.app_table.w.input.input).txpackets
print(("rate: %.3f Mpps"):format(tonumber(n) / (engine.now() - t0) / 1e6))
"""


def snabbpy_rate(tmp: Path, apps: str, link: str, counter: tuple[str, str],
                 duration: float) -> float:
    """Mpps of a one-link graph run for ``duration`` seconds."""
    cfg, rep = tmp / "g.yaml", tmp / "r.json"
    cfg.write_text(f"apps:\n{apps}links:\n  - {link}\n")
    subprocess.run([*SNABBPY, "run", str(cfg), "--duration", str(duration),
                    "--report-interval", "0", "--report-json", str(rep)],
                   check=True, capture_output=True)
    app, name = counter
    return json.loads(rep.read_text())["apps"][app][name] / duration / 1e6


def snabb_rate(snabb: str, script: str) -> float:
    out = subprocess.run([snabb, "snsh", "-e", script], capture_output=True, text=True,
                         check=True).stdout
    return float(out.split("rate:")[1].split()[0])


def make_capture(tmp: Path, fmt: str) -> Path:
    """A file of 60-byte packets written by snabbpy itself."""
    path = tmp / f"bench.{fmt}"
    cfg = tmp / "make.yaml"
    cfg.write_text("apps:\n  s: {class: basic.Source, config: {size: 60}}\n"
                   f"  w: {{class: pcap.PcapWriter, config: {{path: {path}}}}}\n"
                   "links:\n  - s.output -> w.input\n")
    subprocess.run([*SNABBPY, "run", str(cfg), "--duration", "0.3", "--report-interval", "0"],
                   check=True, capture_output=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snabb", help="path to a built snabb binary")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=2.0)
    args = ap.parse_args()
    runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        tmp = Path(d)
        files = {fmt: make_capture(tmp, fmt) for fmt in ("pcap", "pcapng")}
        for _ in range(args.rounds):
            for fmt, path in files.items():
                runs.setdefault(f"snabbpy read {fmt}", []).append(snabbpy_rate(
                    tmp, f"  r: {{class: pcap.PcapReader, config: {{path: {path}, loop: true}}}}\n"
                    "  s: {class: basic.Sink}\n", "r.output -> s.input", ("r", "packets"),
                    args.duration))
                runs.setdefault(f"snabbpy write {fmt}", []).append(snabbpy_rate(
                    tmp, "  s: {class: basic.Source, config: {size: 60}}\n"
                    "  w: {class: pcap.PcapWriter, "
                    f"config: {{path: /dev/null, format: {fmt}}}}}\n",
                    "s.output -> w.input", ("w", "packets"), args.duration))
            if args.snabb:
                runs.setdefault("snabb read pcap", []).append(
                    snabb_rate(args.snabb, SNABB_READ.format(path=files["pcap"])))
                runs.setdefault("snabb write pcap", []).append(
                    snabb_rate(args.snabb, SNABB_WRITE.format(duration=args.duration)))
    med = {k: statistics.median(v) for k, v in runs.items()}
    for name, rates in runs.items():
        listed = ", ".join(f"{r:.2f}" for r in rates)
        print(f"{name:20} median {med[name]:6.2f} Mpps  runs: {listed}")
    for op in ("read", "write"):
        if f"snabb {op} pcap" in med:
            print(f"ratio {op} pcap: {med[f'snabbpy {op} pcap'] / med[f'snabb {op} pcap']:.2f}x "
                  f"of Snabb")


if __name__ == "__main__":
    main()
