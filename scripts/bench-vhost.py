#!/usr/bin/env python3
"""Packets per second through VhostUser, and through DPDK's own vhost-user
backend (testpmd net_vhost) doing the same work, in the same run.

  from guest: testpmd virtio_user txonly -> VhostUser -> Sink
              testpmd virtio_user txonly -> testpmd net_vhost rxonly
  to guest:   Source -> VhostUser -> testpmd virtio_user rxonly
              testpmd net_vhost txonly -> testpmd virtio_user rxonly

The frontend's forwarding core is CPU 0 (``--frontend-cpu``); the backend,
snabbpy's engine thread or net_vhost's forwarding lcore, runs on CPU 1
(``--backend-cpu``). Each case runs ``--runs`` times; the table shows the
best and the spread. Needs dpdk-testpmd (scripts/install-dpdk.sh).

    python scripts/bench-vhost.py --sizes 64,1500 --seconds 3 --runs 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers_testpmd import TestPmd  # noqa: E402

from snabbpy.core import config  # noqa: E402
from snabbpy.core.engine import Engine  # noqa: E402


def txpkts_args(size: int) -> tuple[str, ...]:
    """testpmd txonly arguments for ``size``-byte frames (mbuf size first)."""
    return ("--mbuf-size=10240", f"--txpkts={size}") if size > 2048 else (f"--txpkts={size}",)


@contextmanager
def engine_on(c: config.Config, cpu: int):
    """Runs graph ``c`` in a thread pinned to ``cpu``."""
    engine = Engine()
    engine.configure(c)
    stop = threading.Event()

    def run() -> None:
        os.sched_setaffinity(0, {cpu})  # this thread only
        engine.main(done=stop.is_set)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield engine
    finally:
        stop.set()
        thread.join(30)
        engine.stop()


def rate(read, seconds: float, warmup: float = 1.0) -> float:
    """Packets per second of the counter ``read()`` over ``seconds``."""
    time.sleep(warmup)
    n0, t0 = read(), time.monotonic()
    time.sleep(seconds)
    return (read() - n0) / (time.monotonic() - t0)


def snabbpy_from_guest(sock: str, size: int, a: argparse.Namespace) -> float:
    c = config.new()
    config.app(c, "vhost", "vhost.VhostUser", {"socket_path": sock})
    config.app(c, "sink", "basic.Sink")
    config.link(c, "vhost.output -> sink.input")
    with engine_on(c, a.backend_cpu) as engine:
        stats = engine.apps["vhost"].stats
        with TestPmd.virtio_user(sock, forward_mode="txonly", fwd_cpu=a.frontend_cpu,
                                 extra_args=txpkts_args(size)) as fe:
            fe.start_forwarding()
            return rate(lambda: stats["txq_packets"], a.seconds)


def snabbpy_to_guest(sock: str, size: int, a: argparse.Namespace) -> float:
    c = config.new()
    config.app(c, "source", "basic.Source", {"size": size})
    config.app(c, "vhost", "vhost.VhostUser", {"socket_path": sock})
    config.link(c, "source.output -> vhost.input")
    with engine_on(c, a.backend_cpu) as engine:
        stats = engine.apps["vhost"].stats
        with TestPmd.virtio_user(sock, forward_mode="rxonly", fwd_cpu=a.frontend_cpu) as fe:
            fe.start_forwarding()
            return rate(lambda: stats["rxq_packets"], a.seconds)


def dpdk_from_guest(sock: str, size: int, a: argparse.Namespace) -> float:
    with TestPmd.vhost_backend(sock, forward_mode="rxonly", fwd_cpu=a.backend_cpu) as be:
        with TestPmd.virtio_user(sock, forward_mode="txonly", fwd_cpu=a.frontend_cpu,
                                 extra_args=txpkts_args(size)) as fe:
            be.wait_link_up()
            be.start_forwarding()
            fe.start_forwarding()
            return rate(lambda: be.port_stats().rx_packets, a.seconds)


def dpdk_to_guest(sock: str, size: int, a: argparse.Namespace) -> float:
    with TestPmd.vhost_backend(sock, forward_mode="txonly", fwd_cpu=a.backend_cpu,
                               extra_args=txpkts_args(size)) as be:
        with TestPmd.virtio_user(sock, forward_mode="rxonly", fwd_cpu=a.frontend_cpu) as fe:
            be.wait_link_up()
            fe.start_forwarding()
            be.start_forwarding()
            return rate(lambda: fe.port_stats().rx_packets, a.seconds)


CASES = (("from guest", snabbpy_from_guest, dpdk_from_guest),
         ("to guest", snabbpy_to_guest, dpdk_to_guest))


def best_and_spread(fn, size: int, a: argparse.Namespace) -> tuple[float, float]:
    """Best Mpps of ``a.runs`` runs, and (best - worst) / best."""
    results = []
    for _ in range(a.runs):
        with tempfile.TemporaryDirectory() as d:
            results.append(fn(str(Path(d) / "vhost.sock"), size, a) / 1e6)
    return max(results), (max(results) - min(results)) / max(results)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="64,1500", help="frame sizes, comma separated")
    p.add_argument("--seconds", type=float, default=3.0, help="measuring time per run")
    p.add_argument("--runs", type=int, default=3, help="runs per case")
    p.add_argument("--frontend-cpu", type=int, default=0)
    p.add_argument("--backend-cpu", type=int, default=1)
    a = p.parse_args()
    rows = []
    for size in (int(s) for s in a.sizes.split(",")):
        for name, ours, theirs in CASES:
            mine, mine_spread = best_and_spread(ours, size, a)
            ref, ref_spread = best_and_spread(theirs, size, a)
            rows.append((name, size, mine, mine_spread, ref, ref_spread))
            print(f"  {name} {size}: snabbpy {mine:.2f} Mpps, DPDK {ref:.2f} Mpps",
                  file=sys.stderr)
    print(f"{'direction':<11} {'size':>5} {'VhostUser Mpps':>16} {'net_vhost Mpps':>16} "
          f"{'ratio':>6}")
    for name, size, mine, ms, ref, rs in rows:
        print(f"{name:<11} {size:>5} {mine:>8.2f} ±{ms:4.0%}   {ref:>8.2f} ±{rs:4.0%}   "
              f"{mine / ref:>6.2f}")


if __name__ == "__main__":
    main()
