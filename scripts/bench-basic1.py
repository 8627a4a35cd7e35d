#!/usr/bin/env python3
"""basic1 side by side: `snabbpy bench basic1` and, when given a Snabb
binary, Snabb's `snabbmark basic1`, alternating, several rounds; prints each
rate, the best of each and their ratio.

    scripts/bench-basic1.py [--snabb PATH/TO/snabb] [--rounds 3] [--packets 100e6]

Build Snabb beside the project to compare (never commit it):
    git clone https://github.com/snabbco/snabb && make -C snabb -j
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

RATE = re.compile(r"rate: ([\d.]+) Mpps")


def rate_of(cmd: list[str]) -> float:
    """Runs a benchmark command and returns the Mpps it printed."""
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = RATE.search(out)
    if not m:
        sys.exit(f"no rate in the output of {' '.join(cmd)}:\n{out}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snabb", help="path to a built snabb binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--packets", type=float, default=100e6)
    args = ap.parse_args()
    runs: dict[str, list[float]] = {"snabbpy": [], "snabb": []}
    for _ in range(args.rounds):
        runs["snabbpy"].append(
            rate_of(["snabbpy", "bench", "basic1", "--packets", str(int(args.packets))])
        )
        if args.snabb:
            runs["snabb"].append(rate_of([args.snabb, "snabbmark", "basic1", str(args.packets)]))
    for name, rates in runs.items():
        if rates:
            listed = ", ".join(f"{r:.2f}" for r in rates)
            print(f"{name:8} best {max(rates):6.2f} Mpps  runs: {listed}")
    if runs["snabb"]:
        print(f"ratio    {max(runs['snabbpy']) / max(runs['snabb']):.0%} of Snabb")


if __name__ == "__main__":
    main()
