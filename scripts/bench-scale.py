#!/usr/bin/env python3
"""Scaling over workers, and what an interlink costs; one run, interleaved
rounds, medians.

    scripts/bench-scale.py [--rounds 5] [--duration 3] [--snabb PATH/TO/snabb]
                           [--flows 1024] [--pin] [--scale-only] [--against TREE]

1. configs/myapps.py's per-packet MacSwap behind an RSS app (rss.Flows of
   64-byte UDP frames -> RSS -> MacSwap in each worker -> Sink), on 1
   worker and on 2: the rate is the packets swapped per second. ``--flows``
   sets how many flows Flows makes (RSS's balance depends on it: the report
   says what share the fuller output got); ``--pin`` pins worker wK to
   cpu K (``workers: {wK: {cpu: K}}``), the main process left to the
   scheduler. ``--scale-only`` skips the interlink benchmarks;
   ``--against TREE`` runs the same MacSwap rounds with another (built)
   checkout's snabbpy too, interleaved: before and after a change.
2. interlink throughput for 64-byte packets between two processes:
   - copy: the snabbpy ring as workers use it (the sender copies the
     payload in and frees the packet, the receiver copies it into a fresh
     packet), each end a process of its own;
   - pointers: the same ring passing packet pointers both ways (out, and
     back to their owner to be reused), between processes forked after the
     packets were made, so they share them: the cost of zero copy without
     its bookkeeping (remote mapping, freelist return) -- a lower bound.
   - Snabb's lib.interlink (Lua, `snabb snsh`) the same way, out and back,
     when --snabb is given or found at /root/.cache/snabb-ref/src/snabb.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNABB = Path("/root/.cache/snabb-ref/src/snabb")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
sys.path.insert(0, str(ROOT))  # this tree's snabbpy, as the processes it starts

SCALE = """
apps:
  flows: {{class: rss.Flows, config: {{flows: {flows}, size: 64}}}}
  rss:   {{class: rss.RSS, config: {{lossless: true}}}}
{workers}
  sink:  {{class: basic.Sink}}
links:
  - flows.output -> rss.input
{links}
"""


def scale_graph(n: int, flows: int = 1024, pin: bool = False) -> str:
    """The MacSwap graph with ``n`` workers and ``flows`` flows; ``pin``:
    worker wK on cpu K (modulo the cpus there are)."""
    workers = "\n".join(f'  ms{k}: {{class: "myapps:MacSwap", worker: w{k}}}' for k in range(n))
    links = "\n".join(f"  - rss.out{k} -> ms{k}.input\n  - ms{k}.output -> sink.in{k}"
                      for k in range(n))
    graph = SCALE.format(workers=workers, links=links, flows=flows)
    if pin:
        cpus = os.cpu_count() or 1
        graph += "workers:\n" + "".join(f"  w{k}: {{cpu: {k % cpus}}}\n" for k in range(n))
    return graph


def fuller_share(flows: int, n: int) -> float:
    """The share of ``flows`` flows (Flows' default seed) that RSS puts on
    its fullest of ``n`` outputs: 1/n is a perfect balance."""
    import random

    from snabbpy.apps.rss.flows import flow_frame
    from snabbpy.apps.rss.rss import flow_hash, output_index

    rng, counts = random.Random(1), [0] * n
    for _ in range(flows):
        counts[output_index(flow_hash(flow_frame(64, rng)), n)] += 1
    return max(counts) / flows


def run_scale(tmp: Path, n: int, duration: float, flows: int = 1024,
              pin: bool = False, tree: Path = ROOT) -> float:
    """Mpps swapped by ``n`` workers in ``duration`` seconds, running the
    snabbpy of ``tree``."""
    path, report = tmp / f"scale{n}.yaml", tmp / f"scale{n}.json"
    path.write_text(scale_graph(n, flows, pin))
    subprocess.run([sys.executable, "-P", "-m", "snabbpy", "run", str(path), "--duration",
                    str(duration), "--report-interval", "0", "--report-json", str(report)],
                   env={**ENV, "PYTHONPATH": str(tree)}, check=True, stdout=subprocess.DEVNULL,
                   cwd=tmp)
    merged = json.loads(report.read_text())
    dropped = sum(link.get("txdrop", 0) for link in merged["links"].values())
    if dropped:  # lossless RSS holds packets back: a drop is a fault worth seeing
        print(f"{n} worker(s): {dropped} packets dropped on links", file=sys.stderr)
    return sum(merged["apps"][f"ms{k}"]["swapped"] for k in range(n)) / duration / 1e6


COPY_END = """
import sys, time
from snabbpy.core import interlink, packet
from snabbpy.core.link import Link
from snabbpy.core.native import lib
role, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
ring, l = interlink.Ring(path), Link(role)
if role == "tx":
    tmpl = packet.from_bytes(bytes(64))
    sent = 0
    while sent < count:
        lib.link_fill_clone(l.c, tmpl, 1023)
        sent += ring.send(l)
else:
    got, start = 0, None
    while got < count:
        n = ring.receive(l)
        if n and start is None:
            start = time.perf_counter()
        got += n
        lib.link_free_all(l.c)
    print(count / (time.perf_counter() - start) / 1e6)
"""


def run_copy(tmp: Path, count: int) -> float:
    """Mpps through the copying ring between two spawned processes."""
    from snabbpy.core import interlink

    path = tmp / "copy.ring"
    interlink.create(path)
    rx = subprocess.Popen([sys.executable, "-P", "-c", COPY_END, "rx", str(path), str(count)],
                          env=ENV, stdout=subprocess.PIPE, text=True)
    tx = subprocess.Popen([sys.executable, "-P", "-c", COPY_END, "tx", str(path), str(count)],
                          env=ENV)
    out, _ = rx.communicate()
    tx.wait()
    return float(out)


def run_pointers(tmp: Path, count: int) -> float:
    """Mpps through the ring passing pointers, and back to their owner."""
    from snabbpy.core import interlink, packet
    from snabbpy.core.link import Link
    from snabbpy.core.native import lib

    out_path, back_path = tmp / "out.ring", tmp / "back.ring"
    interlink.create(out_path)
    interlink.create(back_path)
    pool = Link("pool")
    for _ in range(1023):
        pool.transmit(packet.from_bytes(bytes(64)))
    pid = os.fork()
    if pid == 0:  # the other end: neither allocates nor frees, only passes on
        try:
            inbound, outbound, l = interlink.Ring(out_path), interlink.Ring(back_path), Link("b")
            moved = 0
            while moved < count:
                moved += lib.interlink_receive_pointers(inbound.c, l.c, -1)
                lib.interlink_send_pointers(outbound.c, l.c, -1)
            while not l.empty():
                lib.interlink_send_pointers(outbound.c, l.c, -1)
        finally:
            os._exit(0)
    outbound, inbound = interlink.Ring(out_path), interlink.Ring(back_path)
    sent, start = 0, time.perf_counter()
    while sent < count:
        sent += lib.interlink_send_pointers(outbound.c, pool.c, count - sent)
        lib.interlink_receive_pointers(inbound.c, pool.c, -1)
    os.waitpid(pid, 0)
    rate = count / (time.perf_counter() - start) / 1e6
    lib.interlink_receive_pointers(inbound.c, pool.c, -1)
    pool.drain()
    return rate


SNABB_LUA = """
-- Packets out over one interlink and back over another, as run_pointers.
local interlink = require("lib.interlink")
local packet = require("core.packet")
local S = require("syscall")
local C = require("ffi").C
local count = tonumber(main.parameters[1])
local shm = require("core.shm")
local base = "/bench-scale-" .. S.getpid()
local out_name, back_name = base .. "/out", base .. "/back"
local child = S.fork()
if child == 0 then
   local inbound = interlink.attach_receiver(out_name, 1024)
   local outbound = interlink.attach_transmitter(back_name, 1024)
   local moved = 0
   while moved < count do
      while not interlink.empty(inbound) and not interlink.full(outbound) do
         interlink.insert(outbound, interlink.extract(inbound))
         moved = moved + 1
      end
      interlink.pull(inbound)
      interlink.push(outbound)
   end
   S.exit(0)
end
local outbound = interlink.attach_transmitter(out_name, 1024)
local inbound = interlink.attach_receiver(back_name, 1024)
local pool = {}
for i = 1, 1023 do pool[i] = packet.allocate() end
local sent, start = 0, C.get_time_ns()
while sent < count do
   while #pool > 0 and not interlink.full(outbound) and sent < count do
      interlink.insert(outbound, table.remove(pool))
      sent = sent + 1
   end
   interlink.push(outbound)
   while not interlink.empty(inbound) do
      pool[#pool + 1] = interlink.extract(inbound)
   end
   interlink.pull(inbound)
end
S.waitpid(child)
shm.unlink(base)
io.stdout:write(string.format("%.3f\\n", count / (tonumber(C.get_time_ns() - start) / 1e9) / 1e6))
"""


def run_snabb(snabb: Path, tmp: Path, count: int) -> float | None:
    """Mpps through Snabb's lib.interlink between two forked processes,
    packets out and back (as ``run_pointers``)."""
    script = tmp / "interlink.lua"
    script.write_text(SNABB_LUA)
    proc = subprocess.run([str(snabb), "snsh", str(script), str(count)], capture_output=True,
                          text=True)
    lines = [line for line in proc.stdout.split() if line.strip()]
    if proc.returncode != 0 or not lines:
        print(f"snabb: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}",
              file=sys.stderr)
        return None
    return float(lines[-1])


def main() -> None:
    """Runs the rounds and prints the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--packets", type=int, default=20_000_000)
    parser.add_argument("--snabb", type=Path, default=SNABB if SNABB.exists() else None)
    parser.add_argument("--flows", type=int, default=1024)
    parser.add_argument("--pin", action="store_true", help="worker wK on cpu K")
    parser.add_argument("--scale-only", action="store_true", help="no interlink benchmarks")
    parser.add_argument("--against", type=Path, metavar="TREE",
                        help="another snabbpy checkout (built): its MacSwap rounds interleaved")
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    load_before = f"{os.getloadavg()[0]:.2f}"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        shutil.copy(ROOT / "configs" / "myapps.py", tmp)
        for _ in range(args.rounds):
            runs = [("macswap, 1 worker",
                     lambda: run_scale(tmp, 1, args.duration, args.flows, args.pin)),
                    ("macswap, 2 workers",
                     lambda: run_scale(tmp, 2, args.duration, args.flows, args.pin))]
            if args.against:
                runs += [(f"{k}, {args.against}", lambda n=n: run_scale(
                    tmp, n, args.duration, args.flows, args.pin, args.against))
                    for n, k in ((1, "macswap, 1 worker"), (2, "macswap, 2 workers"))]
            if not args.scale_only:
                runs += [("interlink copy", lambda: run_copy(tmp, args.packets)),
                         ("interlink pointers", lambda: run_pointers(tmp, args.packets))]
            if args.snabb and not args.scale_only:
                runs.append(("snabb lib.interlink", lambda: run_snabb(args.snabb, tmp,
                                                                     args.packets)))
            for name, fn in runs:
                value = fn()
                if value is not None:
                    results.setdefault(name, []).append(value)
    width = max(22, *(len(name) for name in results))
    print(f"{'benchmark':<{width}} {'Mpps (median)':>14} {'best':>8}  rounds")
    for name, values in results.items():
        print(f"{name:<{width}} {statistics.median(values):>14.3f} {max(values):>8.3f}  "
              f"{' '.join(f'{v:.3f}' for v in values)}")
    for suffix in ("", f", {args.against}") if args.against else ("",):
        one = results.get(f"macswap, 1 worker{suffix}")
        two = results.get(f"macswap, 2 workers{suffix}")
        if one and two:
            ratios = [b / a for a, b in zip(one, two, strict=True)]
            print(f"scaling 2 workers / 1{suffix or ' (this tree)'}: "
                  f"{statistics.median(two) / statistics.median(one):.2f}x (medians); per round "
                  f"{' '.join(f'{r:.2f}' for r in ratios)}, median "
                  f"{statistics.median(ratios):.2f}x")
    print(f"{args.flows} flows, {'pinned' if args.pin else 'unpinned'} workers; RSS puts "
          f"{100 * fuller_share(args.flows, 2):.1f}% of the flows on its fuller output of 2")
    print(f"load average at start {load_before}, at end {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} cpus): a busy machine spreads the figures")


if __name__ == "__main__":
    main()
