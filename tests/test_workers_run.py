"""`snabbpy run` of graphs over workers, end to end: every packet
accounted for, one report, a dead or failing worker named, a clean stop,
nothing left behind in the counter directory."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snabbpy.core import registry
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent

APPS = '''
from snabbpy.core import packet
from snabbpy.core.app import App, Param
from snabbpy.core.native import lib


class Burst(App):
    """Sends ``count`` UDP frames of 64 flows, then is done."""
    outputs = ("output",)
    config = {"count": Param(int)}

    def __init__(self, conf):
        self.left = conf["count"]
        self.done = False

    def pull(self):
        o = self.output["output"]
        while self.left and not o.full():
            n = self.left
            frame = bytes(12) + b"\\x08\\x00" + bytes([0x45]) + bytes(8) + b"\\x11" + \\
                bytes(2) + bytes([10, 0, 0, n % 64, 10, 0, 1, 1]) + bytes(30)
            o.transmit(packet.from_bytes(frame))
            self.left -= 1
        self.done = not self.left


class Boom(App):
    """Passes packets on, and raises at the ``after``-th."""
    inputs, outputs = ("input",), ("output",)
    config = {"after": Param(int)}

    def __init__(self, conf):
        self.after = conf["after"]

    def push(self):
        i, o = self.input["input"], self.output["output"]
        while not i.empty():
            self.after -= 1
            if self.after == 0:
                raise RuntimeError("boom in a worker")
            o.transmit(i.receive())
'''

GRAPH = '''
apps:
  src:  {{class: "wapps:Burst", config: {{count: {count}}}}}
  rss:  {{class: rss.RSS}}
  ms1:  {{class: "myapps:MacSwap", worker: w1}}
  ms2:  {{class: "{second}", {second_conf} worker: w2}}
  sink: {{class: basic.Sink}}
workers:
  w1: {{}}
  w2: {{}}
links:
  - src.output -> rss.input
  - rss.out0 -> ms1.input
  - rss.out1 -> ms2.input
  - ms1.output -> sink.in0
  - ms2.output -> sink.in1
'''


@pytest.fixture
def graph(tmp_path, shm):
    (tmp_path / "wapps.py").write_text(APPS)
    (tmp_path / "myapps.py").write_text((ROOT / "configs" / "myapps.py").read_text())

    def make(count=20000, second="myapps:MacSwap", second_conf=""):
        path = tmp_path / "g.yaml"
        path.write_text(GRAPH.format(count=count, second=second, second_conf=second_conf))
        return path
    return make


def snabbpy(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-P", "-m", "snabbpy", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd="/", **kw)


def nothing_left(shm: Path) -> bool:
    return not shm.exists() or not any(shm.iterdir())


def test_every_packet_is_accounted_for_over_two_workers(graph, tmp_path, shm):
    report = tmp_path / "report.json"
    proc = snabbpy("run", str(graph(count=20000)), "--report-interval", "0",
                   "--report-json", str(report))
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    r = json.loads(report.read_text())
    links = r["links"]
    assert links["src.output -> rss.input"]["txpackets"] == 20000
    into_workers = links["rss.out0 -> ms1.input"]["txpackets"] + \
        links["rss.out1 -> ms2.input"]["txpackets"]
    dropped = sum(v["txdrop"] for v in links.values())
    assert into_workers + links["rss.out0 -> ms1.input"]["txdrop"] + \
        links["rss.out1 -> ms2.input"]["txdrop"] == 20000
    swapped = r["apps"]["ms1"]["swapped"] + r["apps"]["ms2"]["swapped"]
    assert swapped == into_workers
    assert links["ms1.output -> sink.in0"]["rxpackets"] + \
        links["ms2.output -> sink.in1"]["rxpackets"] == 20000 - dropped
    assert r["apps"]["ms1"]["swapped"] > 0 and r["apps"]["ms2"]["swapped"] > 0
    for il in r["interlinks"].values():
        assert il["txpackets"] == il["rxpackets"]
    for w in r["workers"].values():
        assert w["exit"] == 0 and w["packets"]["allocated"] == w["packets"]["freed"]
    assert "link report:" in out and "rss.out0 -> ms1.input" in out
    assert "-tx" not in out and "-rx" not in out  # the interlink apps stay hidden
    assert nothing_left(shm)


def _worker_pid(shm: Path, name: str) -> int:
    for pid in registry.list_processes(clean=False):
        if (registry.process_info(pid) or {}).get("worker") == name:
            return pid
    raise LookupError(name)


def _wait_for_worker(shm, name):
    found = {}

    def up():
        try:
            found["pid"] = _worker_pid(shm, name)
            return True
        except LookupError:
            return False
    wait_for(up, f"worker {name} to start")
    return found["pid"]


def test_a_worker_killed_by_sigkill_is_named_and_the_others_stop(graph, shm):
    proc = snabbpy("run", str(graph(count=10**9)), "--report-interval", "0")
    pid = _wait_for_worker(shm, "w1")
    os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate()
    assert proc.returncode == 1
    assert f"snabbpy: error: worker 'w1' (pid {pid}) killed by signal SIGKILL" in err
    assert "Traceback" not in err
    assert "link report:" in out
    assert nothing_left(shm)


def test_an_app_raising_in_a_worker_is_named_with_the_users_line(graph, shm):
    proc = snabbpy("run", str(graph(count=10**6, second="wapps:Boom",
                                    second_conf="config: {after: 100},")),
                   "--report-interval", "0")
    out, err = proc.communicate()
    assert proc.returncode == 1
    assert ("snabbpy: error: worker 'w2': app 'ms2' (Boom) failed in push(): "
            "RuntimeError: boom in a worker") in err
    assert "wapps.py" in err and 'raise RuntimeError("boom in a worker")' in err
    assert nothing_left(shm)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_stops_every_worker_cleanly(graph, shm, sig):
    proc = snabbpy("run", str(graph(count=10**9)), "--report-interval", "0")
    _wait_for_worker(shm, "w2")
    time.sleep(0.2)  # let packets flow: the report must show them
    proc.send_signal(sig)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "link report:" in out and "ms2:" in out
    assert nothing_left(shm)


def test_ps_and_top_show_the_workers_of_a_running_graph(graph, shm):
    proc = snabbpy("run", str(graph(count=10**9)), "--report-interval", "0")
    try:
        w1, w2 = _wait_for_worker(shm, "w1"), _wait_for_worker(shm, "w2")
        ps = subprocess.run([sys.executable, "-P", "-m", "snabbpy", "ps"], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        rows = {line.split()[0]: line for line in ps.stdout.splitlines()[1:]}
        assert f"w1 of {proc.pid}" in rows[str(w1)] and f"w2 of {proc.pid}" in rows[str(w2)]
        assert "main" in rows[str(proc.pid)]
        top = subprocess.run([sys.executable, "-P", "-m", "snabbpy", "top", "--once", "--json"],
                             capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert top.returncode == 0, top.stderr  # one graph: the workers are not "others"
        snap = json.loads(top.stdout)
        assert snap["pid"] == proc.pid and snap["workers"] == {"w1": w1, "w2": w2}
        assert "[w1] ms1" in snap["apps"] and "[w2] ms2" in snap["apps"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate()
    assert proc.returncode == 0


def test_top_shows_interlinks_as_the_links_of_the_graph_by_worker(graph, shm):
    proc = snabbpy("run", str(graph(count=10**9)), "--report-interval", "0")
    try:
        _wait_for_worker(shm, "w1")
        _wait_for_worker(shm, "w2")
        top = [sys.executable, "-P", "-m", "snabbpy", "top", str(proc.pid), "--once"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        snap = json.loads(subprocess.run([*top, "--json"], capture_output=True, text=True,
                                         env=env, check=True).stdout)
        assert set(snap["links"]) == {
            "src.output -> rss.input",
            "rss.out0 -> ms1.input (interlink to w1)",
            "rss.out1 -> ms2.input (interlink to w2)",
            "ms1.output -> sink.in0 (interlink from w1)",
            "ms2.output -> sink.in1 (interlink from w2)",
            "[w1] rss.out0 -> ms1.input (interlink from main)",
            "[w1] ms1.output -> sink.in0 (interlink to main)",
            "[w2] rss.out1 -> ms2.input (interlink from main)",
            "[w2] ms2.output -> sink.in1 (interlink to main)"}
        text = subprocess.run(top, capture_output=True, text=True, env=env, check=True).stdout
        assert "[w1] ms1.output -> sink.in0 (interlink to main)" in text
        assert "-tx" not in text and "-rx" not in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate()
    assert proc.returncode == 0


def test_a_cpu_the_process_may_not_use_is_one_line_and_exit_2(graph, tmp_path, shm):
    path = graph()
    path.write_text(path.read_text().replace("w1: {}", "w1: {cpu: 4096}"))
    proc = snabbpy("run", str(path))
    out, err = proc.communicate()
    assert proc.returncode == 2
    assert err.strip().splitlines() == [
        f"snabbpy: error: {path}: worker 'w1': cpu 4096 is not one this process may use "
        f"(allowed: {', '.join(map(str, sorted(os.sched_getaffinity(0))))})"]
    assert nothing_left(shm)


def test_an_app_raising_in_the_main_process_stops_the_workers(graph, tmp_path, shm):
    path = graph()
    text = path.read_text().replace("rss:  {class: rss.RSS}",
                                    "rss:  {class: \"wapps:Boom\", config: {after: 50}}")
    path.write_text(text.replace("rss.out0", "rss.output").replace(
        "  - rss.out1 -> ms2.input\n", ""))
    proc = snabbpy("run", str(path), "--report-interval", "0")
    out, err = proc.communicate()
    assert proc.returncode == 1
    assert "snabbpy: error: app 'rss' (Boom) failed in push(): RuntimeError: boom" in err
    assert "link report:" in out
    assert nothing_left(shm)
