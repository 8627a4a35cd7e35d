#!/usr/bin/env python3
"""The example apps of configs/fastapps.py in each style, beside the same
apps written as Snabb Lua apps, in one run; prints one table of Mpps
(median of interleaved runs) and each form's ratio to Snabb's Lua app.

    scripts/bench-apps.py [--snabb PATH/TO/snabb] [--rounds 5] [--duration 1]
                          [--apps macswap,ttl,l2] [--forms packet,vector,jit]

Each measurement is its own process: the graph starts (a JIT app compiles
its kernel then), runs ``--warmup`` seconds, then the packets the app
receives in ``--duration`` seconds give the rate. The graphs are those of
configs/fast-*.yaml: Frames -> app -> Sink, 64-byte IPv4/UDP frames; the
switch has two ports, each fed by its own Frames (512 hosts behind each
port, every frame to a host behind the other port, 1,024 MACs learnt).
The Lua apps and their graphs are written by this script into a
temporary directory and run with ``snabb snsh``.

Build Snabb beside the project to compare (never commit it):
    git clone https://github.com/snabbco/snabb && make -C snabb -j
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
RATE = re.compile(r"rate: ([\d.]+) Mpps")
APPS = ("macswap", "ttl", "l2")
FORMS = ("packet", "vector", "jit")
CLASSES = {
    "macswap": {"packet": "MacSwap", "vector": "MacSwapVector", "jit": "MacSwapJIT"},
    "ttl": {"packet": "TTLDecrement", "vector": "TTLDecrementVector", "jit": "TTLDecrementJIT"},
    "l2": {"packet": "L2Switch", "vector": "L2SwitchVector", "jit": "L2SwitchJIT"},
}
SIZE = 64
HOSTS = 512  # behind each switch port
# The traffic of each graph: (Frames config, port of the app it feeds).
TRAFFIC = {
    "macswap": [({"size": SIZE}, "input")],
    "ttl": [({"size": SIZE, "ttl": 64}, "input")],
    "l2": [
        ({"size": SIZE, "src_hosts": HOSTS, "src_base": 0, "dst_hosts": HOSTS,
          "dst_base": HOSTS}, "p1"),
        ({"size": SIZE, "src_hosts": HOSTS, "src_base": HOSTS, "dst_hosts": HOSTS,
          "dst_base": 0}, "p2"),
    ],
}


def graph(app: str, form: str):
    """The benchmark graph of ``app`` in ``form`` (a snabbpy Config)."""
    from snabbpy.core import config

    c = config.new()
    config.app(c, "app", f"fastapps:{CLASSES[app][form]}")
    config.app(c, "sink", "basic.Sink")
    outputs = ["output"] if app != "l2" else ["p1", "p2"]
    for k, (conf, port) in enumerate(TRAFFIC[app]):
        config.app(c, f"gen{k}", "fastapps:Frames", conf)
        config.link(c, f"gen{k}.output -> app.{port}")
    for k, port in enumerate(outputs):
        config.link(c, f"app.{port} -> sink.in{k}")
    return c


def run_one(app: str, form: str, warmup: float, duration: float) -> None:
    """Measures one form of one app in this process; prints its rate."""
    sys.path.insert(0, str(CONFIGS))
    from snabbpy.core.engine import Engine

    engine = Engine()
    engine.configure(graph(app, form))
    inputs = [engine.links[name].counters for name in engine.links if "-> app." in name]

    def received() -> int:
        return sum(c.snapshot()["rxpackets"] for c in inputs)

    engine.main(duration=warmup)
    before, start = received(), time.perf_counter()
    engine.main(duration=duration)
    packets, seconds = received() - before, time.perf_counter() - start
    engine.stop()
    rate = packets / seconds / 1e6
    print(f"{app} {form}: {packets} packets in {seconds:.3f} s (rate: {rate:.3f} Mpps)")


# --------------------------------------------------------------------------
# The same apps for Snabb, in Lua

LUA_APPS = r"""
local ffi = require("ffi")
local bit = require("bit")
local engine = require("core.app")
local config = require("core.config")
local link = require("core.link")
local packet = require("core.packet")
local counter = require("core.counter")
local basic = require("apps.basic.basic_apps")
local band, bnot, rshift = bit.band, bit.bnot, bit.rshift
local receive, transmit = link.receive, link.transmit
local nreadable, nwritable = link.nreadable, link.nwritable

-- Frames: repeats a set of template frames on its output.
local Frames = {}
function Frames:new(frames)
   local pkts = {}
   for k, f in ipairs(frames) do pkts[k] = packet.from_string(f) end
   return setmetatable({pkts=pkts, n=#pkts, next=1}, {__index=Frames})
end
function Frames:pull()
   local o, pkts, n, k = self.output.output, self.pkts, self.n, self.next
   for _ = 1, nwritable(o) do
      transmit(o, packet.clone(pkts[k]))
      k = k + 1
      if k > n then k = 1 end
   end
   self.next = k
end
function Frames:stop() for _, p in ipairs(self.pkts) do packet.free(p) end end

local MacSwap = {}
function MacSwap:new() return setmetatable({tmp=ffi.new("uint8_t[6]")}, {__index=MacSwap}) end
function MacSwap:push()
   local i, o, tmp = self.input.input, self.output.output, self.tmp
   for _ = 1, nreadable(i) do
      local p = receive(i)
      if p.length < 14 then
         packet.free(p)
      else
         local d = p.data
         ffi.copy(tmp, d, 6); ffi.copy(d, d + 6, 6); ffi.copy(d + 6, tmp, 6)
         transmit(o, p)
      end
   end
end

local TTL = {}
function TTL:new() return setmetatable({}, {__index=TTL}) end
function TTL:push()
   local i, o = self.input.input, self.output.output
   for _ = 1, nreadable(i) do
      local p = receive(i)
      local d = p.data
      if p.length >= 34 and d[12] == 8 and d[13] == 0 and rshift(d[14], 4) == 4
         and band(d[14], 15) >= 5 and d[22] > 1 then
         local old = d[22] * 256 + d[23]
         local s = band(bnot(d[24] * 256 + d[25]), 0xffff) + band(bnot(old), 0xffff) + old - 256
         s = band(s, 0xffff) + rshift(s, 16)
         s = band(s, 0xffff) + rshift(s, 16)
         s = band(bnot(s), 0xffff)
         d[22] = d[22] - 1
         d[24] = rshift(s, 8); d[25] = band(s, 0xff)
         transmit(o, p)
      else
         packet.free(p)
      end
   end
end

-- A learning switch with the semantics of fastapps.L2Switch, its MAC table
-- a Snabb ctable (uint64 MAC -> port), as Snabb's own bridge apps do.
local ctable = require("lib.ctable")
local L2 = {}
function L2:new(conf)
   local t = ctable.new({key_type=ffi.typeof("uint64_t"), value_type=ffi.typeof("uint32_t"),
                         initial_size=2 * conf.max_macs})
   return setmetatable({ports=conf.ports, table=t, size=0, max=conf.max_macs,
                        learnt=ffi.new("uint64_t[4096]"), key=ffi.new("uint64_t[1]")},
                       {__index=L2})
end
function L2:link()
   self.outs = {}
   for k, name in ipairs(self.ports) do self.outs[k] = self.output[name] end
end
local function flood(outs, port, p)
   local last = nil
   for k = 1, #outs do
      if k ~= port then
         if last then transmit(outs[last], packet.clone(p)) end
         last = k
      end
   end
   if last then transmit(outs[last], p) else packet.free(p) end
end
local function forward(self, i, port, outs)
   local tbl, learnt, key = self.table, self.learnt, self.key
   local n = 0
   for _ = 1, nreadable(i) do
      local p = receive(i)
      if p.length < 14 then
         packet.free(p)
      else
         local d = p.data
         ffi.copy(key, d + 6, 6)
         learnt[n] = key[0]
         n = n + 1
         local entry = nil
         if band(d[0], 1) == 0 then
            ffi.copy(key, d, 6)
            entry = tbl:lookup_ptr(key[0])
         end
         if entry == nil then
            flood(outs, port, p)
         elseif entry.value == port then
            packet.free(p)
         else
            transmit(outs[entry.value], p)
         end
      end
   end
   return n
end
local function learn(self, port, n)
   local tbl, learnt = self.table, self.learnt
   for k = 0, n - 1 do
      local entry = tbl:lookup_ptr(learnt[k])
      if entry ~= nil then
         entry.value = port
      elseif self.size < self.max then
         tbl:add(learnt[k], port)
         self.size = self.size + 1
      end
   end
end
function L2:push()
   local ports, outs = self.ports, self.outs
   for port = 1, #ports do
      learn(self, port, forward(self, self.input[ports[port]], port, outs))
   end
end
"""

LUA_MAIN = r"""
local c = config.new()
config.app(c, "app", APP, APPCONF)
config.app(c, "sink", basic.Sink)
for k, t in ipairs(TRAFFIC) do
   config.app(c, "gen" .. k, Frames, t.frames)
   config.link(c, "gen" .. k .. ".output -> app." .. t.port)
end
for k, port in ipairs(OUTPUTS) do config.link(c, "app." .. port .. " -> sink.in" .. k) end
engine.configure(c)
local function received()
   local total = 0
   for _, t in ipairs(TRAFFIC) do
      total = total + tonumber(counter.read(engine.app_table.app.input[t.port].stats.rxpackets))
   end
   return total
end
engine.main({duration=WARMUP})
local before, start = received(), engine.now()
engine.main({duration=DURATION})
local packets, seconds = received() - before, engine.now() - start
local rate = packets / seconds / 1e6
print(("snabb: %d packets in %.3f s (rate: %.3f Mpps)"):format(packets, seconds, rate))
"""


def lua_string(b: bytes) -> str:
    """``b`` as a Lua string literal."""
    return '"' + "".join(f"\\{c:03d}" for c in b) + '"'


def lua_script(app: str, warmup: float, duration: float) -> str:
    """A snsh script that runs the Lua form of ``app`` and prints its rate."""
    sys.path.insert(0, str(CONFIGS))
    from fastapps import template_frames

    traffic = []
    for conf, port in TRAFFIC[app]:
        c = {"size": SIZE, "ttl": 64, "src_hosts": 1, "src_base": 0, "dst_hosts": 1,
             "dst_base": 1, **conf}
        frames = template_frames(c["size"], c["src_hosts"], c["src_base"], c["dst_hosts"],
                                 c["dst_base"], c["ttl"])
        listed = ", ".join(lua_string(f) for f in frames)
        traffic.append(f'{{port="{port}", frames={{{listed}}}}}')
    klass, conf, outputs = {
        "macswap": ("MacSwap", "nil", '{"output"}'),
        "ttl": ("TTL", "nil", '{"output"}'),
        "l2": ("L2", '{ports={"p1", "p2"}, max_macs=65536}', '{"p1", "p2"}'),
    }[app]
    head = (f"local APP, APPCONF = {klass}, {conf}\nlocal OUTPUTS = {outputs}\n"
            f"local TRAFFIC = {{{', '.join(traffic)}}}\n"
            f"local WARMUP, DURATION = {warmup}, {duration}\n")
    return LUA_APPS + head + LUA_MAIN


def rate_of(cmd: list[str], env: dict | None = None) -> float:
    """Runs one measurement and returns the Mpps it printed."""
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    m = RATE.search(done.stdout)
    if done.returncode or not m:
        sys.exit(f"{' '.join(cmd)} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snabb", help="path to a built snabb binary")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=1.0, help="seconds measured per run")
    ap.add_argument("--warmup", type=float, default=0.3, help="seconds run before measuring")
    ap.add_argument("--apps", default=",".join(APPS))
    ap.add_argument("--forms", default=",".join(FORMS))
    ap.add_argument("--one", nargs=2, metavar=("APP", "FORM"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        run_one(*args.one, args.warmup, args.duration)
        return
    apps, forms = args.apps.split(","), args.forms.split(",")
    for name in apps:
        if name not in APPS:
            sys.exit(f"unknown app {name!r}: choose from {', '.join(APPS)}")
    for name in forms:
        if name not in FORMS:
            sys.exit(f"unknown form {name!r}: choose from {', '.join(FORMS)}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    rates: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-apps-") as tmp:
        scripts = {}
        if args.snabb:
            for name in apps:
                scripts[name] = Path(tmp) / f"{name}.lua"
                scripts[name].write_text(lua_script(name, args.warmup, args.duration))
        for r in range(args.rounds):
            for name in apps:
                for form in forms:
                    cmd = [sys.executable, __file__, "--one", name, form,
                           "--warmup", str(args.warmup), "--duration", str(args.duration)]
                    rates.setdefault((name, form), []).append(rate_of(cmd, env))
                if args.snabb:
                    cmd = [args.snabb, "snsh", str(scripts[name])]
                    rates.setdefault((name, "snabb"), []).append(rate_of(cmd))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    cols = list(forms) + (["snabb"] if args.snabb else [])
    print(f"{SIZE}-byte frames, Mpps, median of {args.rounds} interleaved runs"
          + (" (x = ratio to Snabb's Lua app)" if args.snabb else ""))
    print(f"{'app':8}" + "".join(f"{c:>18}" for c in cols))
    for name in apps:
        cells = []
        snabb = statistics.median(rates[(name, "snabb")]) if args.snabb else None
        for form in cols:
            m = statistics.median(rates[(name, form)])
            ratio = f" ({m / snabb:.2f}x)" if snabb and form != "snabb" else ""
            cells.append(f"{m:.2f}{ratio}")
        print(f"{name:8}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
