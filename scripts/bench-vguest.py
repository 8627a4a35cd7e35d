#!/usr/bin/env python3
"""Benchmark: VGuest beside DPDK's own virtio_user, against the same
testpmd net_vhost backend, in one run.

Four measurements, each side pinned to its own CPU (the driver on
--driver-cpu, the testpmd backend's forwarding core on --backend-cpu):

  vguest      -> net_vhost rxonly     (Source -> VGuest; testpmd counts)
  net_vhost txonly -> vguest          (VGuest -> Sink; VGuest counts)
  virtio_user txonly -> net_vhost rxonly        (the reference)
  net_vhost txonly -> virtio_user rxonly        (the reference)

each on split rings and on packed rings (``--rings``: vguest's ``packed``
key, virtio_user's ``packed_vq``; net_vhost offers both), so DPDK's own
packed figures stand beside ours. Both drivers take VIRTIO_F_IN_ORDER
with packed rings, which net_vhost offers (``--in-order off``: neither;
vguest's ``in_order`` key, virtio_user's ``in_order`` devarg). Prints
packets/s in Mpps and the ratio vguest/virtio_user for each direction and
ring; --runs repeats everything,
interleaved, and reports best, spread and median, and the ratio as best/best
and as the median of the per-run ratios.

    python scripts/bench-vguest.py --duration 5 --size 60 --runs 3 [--rings split,packed]
        [--directions tx,rx] [--in-order on|off]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers_testpmd import TestPmd  # noqa: E402

from snabbpy.core import config  # noqa: E402
from snabbpy.core.engine import Engine  # noqa: E402

WARMUP = 1.0


def vguest_engine(sock: str, direction: str, size: int, queue_size: int,
                  packed: bool, in_order: bool = True) -> Engine:
    """Source -> VGuest (direction "tx") or VGuest -> Sink ("rx")."""
    c = config.new()
    config.app(c, "nic", "vguest.VGuest", {"vhost_user": sock, "queue_size": queue_size,
                                           "packed": packed, "in_order": in_order})
    if direction == "tx":
        config.app(c, "source", "basic.Source", {"size": size})
        config.link(c, "source.output -> nic.input")
    else:
        config.app(c, "sink", "basic.Sink")
        config.link(c, "nic.output -> sink.input")
    e = Engine()
    e.configure(c)
    return e


def breathe_for(e: Engine, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(100):
            e.breathe()


def bench_vguest(direction: str, args: argparse.Namespace, cpu: int) -> float:
    """Mpps of VGuest sending ("tx") to or receiving ("rx") from testpmd."""
    mode = "rxonly" if direction == "tx" else "txonly"
    with tempfile.TemporaryDirectory() as d:
        sock = f"{d}/vhost.sock"
        with TestPmd.vhost_backend(sock, forward_mode=mode, fwd_cpu=args.backend_cpu,
                                   txpkts=args.size if mode == "txonly" else None) as pmd:
            os.sched_setaffinity(0, {cpu})
            e = vguest_engine(sock, direction, args.size, args.queue_size, args.packed,
                              args.in_order == "on")
            pmd.wait_link_up()
            pmd.start_forwarding()
            breathe_for(e, WARMUP)
            count = counter(e, pmd, direction)
            start, t0 = count(), time.monotonic()
            breathe_for(e, args.duration)
            rate = (count() - start) / (time.monotonic() - t0)
            pmd.stop_forwarding()
            e.stop()
    return rate / 1e6


def counter(e: Engine, pmd: TestPmd, direction: str):
    """What to count: packets testpmd received, or packets VGuest received."""
    if direction == "tx":
        return lambda: pmd.port_stats().rx_packets
    return lambda: e.apps["nic"].stats["rx_packets"]


def bench_virtio_user(direction: str, args: argparse.Namespace, cpu: int) -> float:
    """Mpps of DPDK's virtio_user doing the same against the same backend."""
    back_mode, front_mode = ("rxonly", "txonly") if direction == "tx" else ("txonly", "rxonly")
    with tempfile.TemporaryDirectory() as d:
        sock = f"{d}/vhost.sock"
        with TestPmd.vhost_backend(sock, forward_mode=back_mode, fwd_cpu=args.backend_cpu,
                                   txpkts=args.size if back_mode == "txonly" else None) as back:
            with TestPmd.virtio_user(sock, packed=args.packed, forward_mode=front_mode, fwd_cpu=cpu,
                                     queue_size=args.queue_size,
                                     in_order=args.in_order == "on",
                                     txpkts=args.size if front_mode == "txonly" else None) as fr:
                back.wait_link_up()
                fr.wait_link_up()
                back.start_forwarding()
                fr.start_forwarding()
                counted = back if direction == "tx" else fr
                time.sleep(WARMUP)
                start, t0 = counted.port_stats().rx_packets, time.monotonic()
                time.sleep(args.duration)
                rate = (counted.port_stats().rx_packets - start) / (time.monotonic() - t0)
                fr.stop_forwarding()
                back.stop_forwarding()
    return rate / 1e6


def median_ratio(ours: list[float], ref: list[float]) -> float:
    """Median of the per-run ratios vguest/virtio_user (each run measured
    both back to back); a run where the reference measured nothing is left
    out (nan if all)."""
    ratios = [x / y for x, y in zip(ours, ref, strict=True) if y]
    return statistics.median(ratios) if ratios else float("nan")


def main() -> None:
    """Runs every measurement --runs times and prints the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument("--size", type=int, default=60, help="packet size in bytes")
    p.add_argument("--queue-size", type=int, default=256)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--driver-cpu", type=int, default=0)
    p.add_argument("--backend-cpu", type=int, default=1)
    p.add_argument("--rings", default="split,packed", help="split, packed or both")
    p.add_argument("--directions", default="tx,rx", help="tx, rx or both")
    p.add_argument("--in-order", choices=("on", "off"), default="on",
                   help="both drivers take IN_ORDER with packed rings (off: neither)")
    args = p.parse_args()
    rings = args.rings.split(",")
    directions = args.directions.split(",")
    for name, values, allowed in (("--rings", rings, ("split", "packed")),
                                  ("--directions", directions, ("tx", "rx"))):
        if not values or any(v not in allowed for v in values):
            p.error(f"{name}: expected a comma-separated list of {' and '.join(allowed)}")
    results: dict[str, list[float]] = {}
    for run in range(args.runs):
        for direction in directions:
            for ring in rings:
                args.packed = ring == "packed"
                for name, fn in (("vguest", bench_vguest), ("virtio_user", bench_virtio_user)):
                    mpps = fn(direction, args, args.driver_cpu)
                    results.setdefault(f"{name} {direction} {ring}", []).append(mpps)
                    print(f"run {run + 1}: {name:11} {direction} {ring}: {mpps:.2f} Mpps",
                          flush=True)
    print(f"\n{args.size}-byte packets, queue size {args.queue_size}, {args.duration:g} s "
          f"per measurement, in-order {args.in_order}, best of {args.runs} (spread), median:")
    labels = {"tx": "driver -> net_vhost rxonly", "rx": "net_vhost txonly -> driver"}
    for direction in directions:
        for ring in rings:
            ours = results[f"vguest {direction} {ring}"]
            ref = results[f"virtio_user {direction} {ring}"]
            print(f"  {labels[direction]:28} {ring:6} vguest {max(ours):5.2f} "
                  f"({min(ours):.2f}-{max(ours):.2f}) med {statistics.median(ours):.2f}"
                  f"  virtio_user {max(ref):5.2f} ({min(ref):.2f}-{max(ref):.2f}) "
                  f"med {statistics.median(ref):.2f}"
                  f"  ratio best/best {max(ours) / max(ref):.2f}"
                  f" median {median_ratio(ours, ref):.2f}")


if __name__ == "__main__":
    main()
