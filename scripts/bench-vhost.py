#!/usr/bin/env python3
"""Packets per second through VhostUser, and through DPDK's own vhost-user
backend (testpmd net_vhost) doing the same work, in the same run.

  from guest: testpmd virtio_user txonly -> VhostUser -> Sink
              testpmd virtio_user txonly -> testpmd net_vhost rxonly
  to guest:   Source -> VhostUser -> testpmd virtio_user rxonly
              testpmd net_vhost txonly -> testpmd virtio_user rxonly

each on split rings and on packed rings (``--rings``: virtio_user with
``packed_vq=1``; VhostUser and net_vhost both offer packed rings, with any
number of queue pairs), so the table has DPDK's own packed figures
beside ours.

With ``--queues N`` (N > 1) the same cases also run with N queue pairs on
both sides (VhostUser ``queues: N``, one Sink or Source per pair; testpmd
``queues=N``, its one forwarding lcore polling every queue), interleaved
with the one-queue VhostUser runs, and the table adds the N-queue columns
and the N-queue/1-queue ratio of VhostUser.

With ``--workers`` as well, snabbpy also runs each pair in its own worker
process (``snabbpy run`` of a YAML graph: pair 0 by the VhostUser that owns
the socket on worker w0, pair k by a VhostQueue on worker wk, through the
queue handoff), its workers on ``--worker-cpus`` (napping when idle: with
``--busywait`` the main process, without apps, would spin too), interleaved
with the rest; the extra table shows it beside VhostUser with one queue.

The frontend's forwarding core is CPU 0 (``--frontend-cpu``); the backend,
snabbpy's engine thread or net_vhost's forwarding lcore, runs on CPU 1
(``--backend-cpu``). Each case runs ``--runs`` times, snabbpy and DPDK
alternately; the table shows the best run and the range, the ratio of the
best runs, and the median of the per-run ratios. Each run's figure is its
best half-second window: the machine is shared, and the best window is the
least disturbed.
Needs dpdk-testpmd (scripts/install-dpdk.sh).

    python scripts/bench-vhost.py --sizes 64,1500 --seconds 3 --runs 3 [--nap] [--queues 2]
        [--workers] [--rings split,packed]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers import live_counters, wait_for  # noqa: E402
from helpers_testpmd import TestPmd  # noqa: E402

from snabbpy.core import config  # noqa: E402
from snabbpy.core.engine import running_in_thread  # noqa: E402


def txpkts_args(size: int) -> tuple[str, ...]:
    """testpmd txonly arguments for ``size``-byte frames (mbuf size first)."""
    return ("--mbuf-size=10240", f"--txpkts={size}") if size > 2048 else (f"--txpkts={size}",)


def engine_on(c: config.Config, cpu: int, busy: bool = True):
    """Runs graph ``c`` in a thread pinned to ``cpu``; ``busy``: never nap
    (an idle nap lets a guest overflow a 256-entry ring meanwhile)."""
    return running_in_thread(c, cpu=cpu, busywait=busy)


def rate(read, seconds: float, warmup: float = 1.0, window: float = 0.5) -> float:
    """Packets per second of the counter ``read()``: the best ``window`` of
    ``seconds`` (other processes share these cores; the best window is the
    one they disturbed least)."""
    time.sleep(warmup)
    best, n0, t0 = 0.0, read(), time.monotonic()
    for _ in range(max(1, int(seconds / window))):
        time.sleep(window)
        n1, t1 = read(), time.monotonic()
        best = max(best, (n1 - n0) / (t1 - t0))
        n0, t0 = n1, t1
    return best


def _pairs_total(stats, ring: str, queues: int):
    """A reader of the sum of ``ring`` ("rxq"/"txq") packets over the pairs."""
    names = [f"{ring}{k or ''}_packets" for k in range(queues)]
    return lambda: sum(stats[n] for n in names)


def snabbpy_from_guest(sock: str, size: int, a: argparse.Namespace, queues: int = 1) -> float:
    """testpmd txonly -> VhostUser -> Sink (one per pair): packets/s out of the guest."""
    c = config.new()
    config.app(c, "vhost", "vhost.VhostUser", {"socket_path": sock, "queues": queues})
    for k in range(queues):
        config.app(c, f"sink{k}", "basic.Sink")
        config.link(c, f"vhost.output{k or ''} -> sink{k}.input")
    with engine_on(c, a.backend_cpu, not a.nap) as engine:
        read = _pairs_total(engine.apps["vhost"].stats, "txq", queues)
        with TestPmd.virtio_user(sock, packed=a.packed, forward_mode="txonly",
                                 fwd_cpu=a.frontend_cpu, extra_args=txpkts_args(size),
                                 queues=queues) as fe:
            fe.start_forwarding()
            return rate(read, a.seconds)


def snabbpy_to_guest(sock: str, size: int, a: argparse.Namespace, queues: int = 1) -> float:
    """Source (one per pair) -> VhostUser -> testpmd rxonly: packets/s into the guest."""
    c = config.new()
    config.app(c, "vhost", "vhost.VhostUser", {"socket_path": sock, "queues": queues})
    for k in range(queues):
        config.app(c, f"source{k}", "basic.Source", {"size": size})
        config.link(c, f"source{k}.output -> vhost.input{k or ''}")
    with engine_on(c, a.backend_cpu, not a.nap) as engine:
        read = _pairs_total(engine.apps["vhost"].stats, "rxq", queues)
        with TestPmd.virtio_user(sock, packed=a.packed, forward_mode="rxonly",
                                 fwd_cpu=a.frontend_cpu, queues=queues) as fe:
            fe.start_forwarding()
            return rate(read, a.seconds)


def workers_graph(sock: str, queues: int, cpus: list[int], to_guest: bool, size: int) -> str:
    """The YAML graph of one worker per pair: w0's VhostUser owns ``sock``
    and serves pair 0, wk's VhostQueue pair k; a Sink (or Source) beside each."""
    apps = [f'  vhost: {{class: vhost.VhostUser, worker: w0, config: {{socket_path: "{sock}", '
            f'queues: {queues}, serve: [0]}}}}']
    links = []
    for k in range(queues):
        app = "vhost" if k == 0 else f"vhostq{k}"
        if k:
            apps.append(f'  {app}: {{class: vhost.VhostQueue, worker: w{k}, '
                        f'config: {{socket_path: "{sock}", queue: {k}}}}}')
        if to_guest:
            apps.append(f"  source{k}: {{class: basic.Source, worker: w{k}, "
                        f"config: {{size: {size}}}}}")
            links.append(f"  - source{k}.output -> {app}.input")
        else:
            apps.append(f"  sink{k}: {{class: basic.Sink, worker: w{k}}}")
            links.append(f"  - {app}.output -> sink{k}.input")
    workers = [f"  w{k}: {{cpu: {cpus[k % len(cpus)]}}}" for k in range(queues)]
    return "\n".join(["apps:", *apps, "workers:", *workers, "links:", *links]) + "\n"


def snabbpy_workers(sock: str, size: int, a: argparse.Namespace, queues: int,
                    to_guest: bool) -> float:
    """One worker per pair (``workers_graph``) against testpmd virtio_user."""
    d = Path(sock).parent
    (d / "g.yaml").write_text(workers_graph(sock, queues, a.worker_cpus, to_guest, size))
    os.environ["SNABBPY_SHM"] = str(d / "shm")  # live_counters reads this run's only
    root = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.Popen([sys.executable, "-P", "-m", "snabbpy", "run", str(d / "g.yaml"),
                             # no --busywait: it would make the main process, which has
                             # no app here, spin on one of the two cores too
                             "--report-interval", "0"],
                            env={**os.environ, "PYTHONPATH": root}, cwd=str(d),
                            stdout=subprocess.DEVNULL)
    ring = "rxq" if to_guest else "txq"
    apps = ["vhost", *(f"vhostq{k}" for k in range(1, queues))]
    try:
        wait_for(lambda: Path(sock).exists(), "the vhost-user socket")
        extra = {} if to_guest else {"extra_args": txpkts_args(size)}
        with TestPmd.virtio_user(sock, packed=a.packed,
                                 forward_mode="rxonly" if to_guest else "txonly",
                                 fwd_cpu=a.frontend_cpu, queues=queues, **extra) as fe:
            fe.start_forwarding()
            return rate(lambda: sum(live_counters(n).get(f"{ring}_packets", 0) for n in apps),
                        a.seconds)
    finally:
        proc.terminate()
        proc.wait(60)


def workers_from_guest(sock: str, size: int, a: argparse.Namespace, queues: int = 1) -> float:
    """testpmd txonly -> one worker per pair -> Sinks."""
    return snabbpy_workers(sock, size, a, queues, to_guest=False)


def workers_to_guest(sock: str, size: int, a: argparse.Namespace, queues: int = 1) -> float:
    """Sources -> one worker per pair -> testpmd rxonly."""
    return snabbpy_workers(sock, size, a, queues, to_guest=True)


def dpdk_from_guest(sock: str, size: int, a: argparse.Namespace, queues: int = 1) -> float:
    """testpmd txonly -> testpmd net_vhost rxonly: the reference."""
    with TestPmd.vhost_backend(sock, forward_mode="rxonly", fwd_cpu=a.backend_cpu,
                               queues=queues) as be:
        with TestPmd.virtio_user(sock, packed=a.packed, forward_mode="txonly",
                                 fwd_cpu=a.frontend_cpu, extra_args=txpkts_args(size),
                                 queues=queues) as fe:
            be.wait_link_up()
            be.start_forwarding()
            fe.start_forwarding()
            return rate(lambda: be.port_stats().rx_packets, a.seconds)


def dpdk_to_guest(sock: str, size: int, a: argparse.Namespace, queues: int = 1) -> float:
    """testpmd net_vhost txonly -> testpmd rxonly: the reference."""
    with TestPmd.vhost_backend(sock, forward_mode="txonly", fwd_cpu=a.backend_cpu,
                               extra_args=txpkts_args(size), queues=queues) as be:
        with TestPmd.virtio_user(sock, packed=a.packed, forward_mode="rxonly",
                                 fwd_cpu=a.frontend_cpu, queues=queues) as fe:
            be.wait_link_up()
            fe.start_forwarding()
            be.start_forwarding()
            return rate(lambda: fe.port_stats().rx_packets, a.seconds)


CASES = (("from guest", snabbpy_from_guest, dpdk_from_guest, workers_from_guest),
         ("to guest", snabbpy_to_guest, dpdk_to_guest, workers_to_guest))


def measure(fn, size: int, a: argparse.Namespace, queues: int = 1) -> float:
    """Mpps of one run of case ``fn`` with ``queues`` pairs."""
    with tempfile.TemporaryDirectory() as d:
        return fn(str(Path(d) / "vhost.sock"), size, a, queues) / 1e6


def compare(ours, theirs, workers, size: int, a: argparse.Namespace) -> dict:
    """Runs both backends ``a.runs`` times, alternately (and, with
    ``--queues``, both again with that many pairs; with ``--workers``, ours
    with a worker per pair too), so that all meet the same disturbances;
    ratios are medians of the per-run ratios."""
    mine, ref, mine_q, ref_q, mine_w = [], [], [], [], []
    for _ in range(a.runs):
        mine.append(measure(ours, size, a))
        ref.append(measure(theirs, size, a))
        if a.queues > 1:
            mine_q.append(measure(ours, size, a, a.queues))
            ref_q.append(measure(theirs, size, a, a.queues))
        if a.queues > 1 and a.workers:
            mine_w.append(measure(workers, size, a, a.queues))
    r = {"mine": mine, "ref": ref, "ratio": _median_ratio(mine, ref)}
    if a.queues > 1:
        r.update(mine_q=mine_q, ref_q=ref_q, ratio_q=_median_ratio(mine_q, ref_q),
                 scale=_median_ratio(mine_q, mine))
    if mine_w:
        r.update(mine_w=mine_w, ratio_w=_median_ratio(mine_w, ref_q),
                 scale_w=_median_ratio(mine_w, mine))
    return r


def _median_ratio(a: list[float], b: list[float]) -> float:
    """Median of the per-run ratios; a run that measured nothing (a peer
    that did not start on the loaded machine) is left out (nan if all)."""
    ratios = [x / y for x, y in zip(a, b, strict=True) if y]
    return statistics.median(ratios) if ratios else float("nan")


def spread(values: list[float]) -> str:
    """Best and worst as "best (worst-best)"."""
    return f"{max(values):6.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    """Runs every case and prints the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="64,1500", help="frame sizes, comma separated")
    p.add_argument("--seconds", type=float, default=3.0, help="measuring time per run")
    p.add_argument("--runs", type=int, default=3, help="runs per case")
    p.add_argument("--frontend-cpu", type=int, default=0)
    p.add_argument("--backend-cpu", type=int, default=1)
    p.add_argument("--rings", default="split,packed", help="split, packed or both")
    p.add_argument("--directions", default="from,to",
                   help="from (guest), to (guest) or both, comma separated")
    p.add_argument("--nap", action="store_true",
                   help="let the engine nap when idle (the default for 'snabbpy run')")
    p.add_argument("--queues", type=int, default=1,
                   help="also run with this many queue pairs on both sides")
    p.add_argument("--workers", action="store_true",
                   help="with --queues: also serve each pair from its own worker")
    p.add_argument("--worker-cpus", default="1,0",
                   help="cpus of the workers w0, w1, ... (comma separated, reused in turn)")
    a = p.parse_args()
    a.worker_cpus = [int(c) for c in a.worker_cpus.split(",")]
    rows = []
    for size in (int(s) for s in a.sizes.split(",")):
        for name, ours, theirs, workers in CASES:
            if name.split()[0] not in a.directions.split(","):
                continue
            for ring in a.rings.split(","):
                a.packed = ring == "packed"
                r = compare(ours, theirs, workers, size, a)
                rows.append((name, f"{size} {ring}", r))
                print(f"  {name} {size} {ring}: snabbpy {[round(x, 2) for x in r['mine']]}, "
                      f"DPDK {[round(x, 2) for x in r['ref']]}", file=sys.stderr)
    print(f"{'direction':<11} {'size ring':>12}  {'VhostUser Mpps':<22} {'net_vhost Mpps':<22} "
          "best/best  median ratio")
    for name, size, r in rows:
        print(f"{name:<11} {size:>12}  {spread(r['mine']):<22} {spread(r['ref']):<22} "
              f"{max(r['mine']) / max(r['ref']):9.2f}  {r['ratio']:12.2f}")
    if a.queues > 1:
        q = a.queues
        print(f"\n{'direction':<11} {'size ring':>12}  {f'VhostUser {q}q Mpps':<22} "
              f"{f'net_vhost {q}q Mpps':<22} median ratio  VhostUser {q}q/1q")
        for name, size, r in rows:
            print(f"{name:<11} {size:>12}  {spread(r['mine_q']):<22} {spread(r['ref_q']):<22} "
                  f"{r['ratio_q']:12.2f}  {r['scale']:16.2f}")
    if a.queues > 1 and a.workers:
        q = a.queues
        print(f"\n{'direction':<11} {'size ring':>12}  {f'{q} queues on {q} workers Mpps':<28} "
              f"{'VhostUser 1q Mpps':<22} {f'net_vhost {q}q':<14} workers/1q  "
              f"workers/net_vhost {q}q")
        for name, size, r in rows:
            print(f"{name:<11} {size:>12}  {spread(r['mine_w']):<28} {spread(r['mine']):<22} "
                  f"{max(r['ref_q']):14.2f} {r['scale_w']:10.2f}  {r['ratio_w']:20.2f}")


if __name__ == "__main__":
    main()
