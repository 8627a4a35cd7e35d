#!/usr/bin/env python3
"""Speed of VhostUser's TSO segmentation (lib/virtio/offload.c): 64 KiB GSO
TCP frames cut into 1448-byte segments, IPv4 and IPv6, each segment's
headers fixed and its IP and TCP checksums computed. Reports the input
rate in Gbit/s and the segments per second, the median of ``--runs`` runs
(each ``--frames`` frames, the two frame kinds interleaved).

    python scripts/bench-offload.py --runs 5 --frames 20000
"""

from __future__ import annotations

import argparse
import statistics
import time

from snabbpy.core.native import ffi, lib
from snabbpy.testing.gso import GSO_TCPV4, GSO_TCPV6, tcp_frame

MSS = 1448


def one_run(frame: bytes, gso_type: int, frames: int) -> tuple[float, float]:
    """(Gbit/s of frames in, segments per second) for one run."""
    buf = ffi.new("uint8_t[]", frame)
    plan = ffi.new("struct gso_plan *")
    flags = lib.DR_F_TSO4 | lib.DR_F_TSO6
    if lib.offload_gso_plan(buf, len(frame), gso_type, MSS, flags, plan):
        raise SystemExit("bench frame refused")
    t = time.perf_counter()
    lib.offload_gso_bench(buf, plan, frames)
    dt = time.perf_counter() - t
    return len(frame) * frames * 8 / dt / 1e9, plan.nseg * frames / dt


def main() -> None:
    """Runs the cases, prints the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--frames", type=int, default=20000)
    args = ap.parse_args()
    payload = bytes(range(256)) * 254 + bytes(MSS * 45 - 256 * 254)  # 45 full segments
    cases = {"IPv4": (tcp_frame(payload, partial=True), GSO_TCPV4),
             "IPv6": (tcp_frame(payload[:-20], v6=True, partial=True), GSO_TCPV6)}
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    for _ in range(args.runs):
        for name, (frame, gso_type) in cases.items():
            results[name].append(one_run(frame, gso_type, args.frames))
    print(f"{'case':6} {'frame':>7} {'Gbit/s in':>10} {'Msegments/s':>12}  (median of "
          f"{args.runs} runs of {args.frames} frames)")
    for name, (frame, _) in cases.items():
        gbps = statistics.median(r[0] for r in results[name])
        mpps = statistics.median(r[1] for r in results[name]) / 1e6
        print(f"{name:6} {len(frame):7} {gbps:10.1f} {mpps:12.2f}")


if __name__ == "__main__":
    main()
