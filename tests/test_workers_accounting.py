"""Lost packets and misused packets in a graph over workers, end to end:
each worker takes its apps' balance when it stops and sends it to the
supervisor, so an app that loses packets is named with its worker in the
one report; a packet misused in a worker (PacketFault) is the same line as
in one process, with the worker named, and the other workers stop cleanly."""

from __future__ import annotations

import json
import os
import subprocess

from helpers import SNABBPY, USER_APPS, write_pcap

LOST = "received 3,000 packets it never sent on or freed"

#: Keeps one packet, and frees it twice when it stops.
FREES_TWICE_ON_STOP = '''

class FreeTwiceOnStop(App):
    inputs, outputs = ("input",), ()

    def __init__(self, conf):
        self.kept = None

    def push(self):
        i = self.input["input"]
        while not i.empty():
            p = i.receive()
            if self.kept is None:
                self.kept = p
            else:
                packet.free(p)

    def stop(self):
        if self.kept is not None:
            packet.free(self.kept)
            packet.free(self.kept)
'''


def run_graph(tmp_path, apps: str, links: list[str], count: int = 3000):
    """``snabbpy run`` of a graph (``apps``: YAML lines under ``apps:``)
    over a capture of ``count`` frames, with --report-json r.json."""
    (tmp_path / "userapps.py").write_text(USER_APPS + FREES_TWICE_ON_STOP)
    write_pcap(tmp_path / "in.pcap", count)
    (tmp_path / "g.yaml").write_text(
        "apps:\n  reader: {class: pcap.PcapReader, config: {path: in.pcap}}\n" + apps
        + "links:\n" + "".join(f"  - {link}\n" for link in links))
    proc = subprocess.run([*SNABBPY, "run", "g.yaml", "--report-interval", "0",
                           "--report-json", "r.json"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120,
                          env={**os.environ, "SNABBPY_SHM": str(tmp_path / "shm")})
    report = tmp_path / "r.json"
    return proc, json.loads(report.read_text()) if report.exists() else None


def nothing_left(tmp_path) -> bool:
    shm = tmp_path / "shm"
    return not shm.exists() or not any(shm.iterdir())


def test_an_app_losing_packets_on_a_worker_is_named_with_its_worker(tmp_path):
    proc, report = run_graph(tmp_path, "  user: {class: 'userapps:Leaky', worker: w1}\n",
                             ["reader.output -> user.input"])
    assert proc.returncode == 0, proc.stderr  # as in one process: a warning
    warnings = [line for line in proc.stderr.splitlines() if "never sent on" in line]
    assert warnings == [f"snabbpy: warning: worker 'w1': app 'user' {LOST}"], proc.stderr
    assert report["lost_packets"] == {"user": 3000}
    assert report["workers"]["w1"]["lost_packets"] == {"user": 3000}
    assert nothing_left(tmp_path)


def test_an_app_losing_packets_in_the_main_process_of_a_worker_graph(tmp_path):
    proc, report = run_graph(tmp_path, "  fwd: {class: basic.Join, worker: w1}\n"
                                       "  user: {class: 'userapps:Leaky'}\n",
                             ["reader.output -> fwd.input", "fwd.output -> user.input"])
    assert proc.returncode == 0, proc.stderr
    assert f"snabbpy: warning: app 'user' {LOST}" in proc.stderr.splitlines(), proc.stderr
    assert report["lost_packets"] == {"user": 3000}
    assert report["workers"]["w1"]["lost_packets"] == {}


def test_a_clean_graph_over_two_workers_loses_nothing(tmp_path):
    proc, report = run_graph(tmp_path, "  fwd: {class: basic.Join, worker: w1}\n"
                                       "  tee: {class: basic.Tee, worker: w2}\n"
                                       "  sink: {class: basic.Sink}\n",
                             ["reader.output -> fwd.input", "fwd.output -> tee.input",
                              "tee.out -> sink.input"])
    assert proc.returncode == 0, proc.stderr
    assert "never sent on" not in proc.stderr
    assert report["lost_packets"] == {}
    assert report["links"]["tee.out -> sink.input"]["rxpackets"] == 3000
    assert all(w["lost_packets"] == {} for w in report["workers"].values())


def test_a_packet_misused_in_a_worker_is_one_line_naming_packet_app_and_worker(tmp_path):
    proc, report = run_graph(tmp_path, "  user: {class: 'userapps:SendThenFree', worker: w1}\n"
                                       "  sink: {class: basic.Sink, worker: w2}\n",
                             ["reader.output -> user.input", "user.output -> sink.input"],
                             count=10)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("snabbpy: error: worker 'w1': packet 0x"), errors
    assert "offset 0x" in errors[0]
    assert ("freed while a link holds it (sent on, then freed) in app 'user' (SendThenFree)"
            in errors[0]), errors
    assert "Traceback" not in proc.stderr and "died" not in proc.stderr
    assert "link report:" in proc.stdout
    assert report["workers"]["w1"]["exit"] == 1 and report["workers"]["w2"]["exit"] == 0
    assert "packet 0x" in report["workers"]["w1"]["failure"]
    assert nothing_left(tmp_path)


def test_a_packet_freed_twice_in_a_worker_stops_the_run(tmp_path):
    proc, _ = run_graph(tmp_path, "  user: {class: 'userapps:FreeTwice', worker: w1}\n",
                        ["reader.output -> user.input"], count=10)
    assert proc.returncode == 1, proc.stderr
    assert "snabbpy: error: worker 'w1': packet 0x" in proc.stderr
    assert "freed twice in app 'user' (FreeTwice)" in proc.stderr, proc.stderr
    assert nothing_left(tmp_path)


def test_a_packet_misused_in_the_main_process_of_a_worker_graph(tmp_path):
    proc, _ = run_graph(tmp_path, "  fwd: {class: basic.Join, worker: w1}\n"
                                  "  user: {class: 'userapps:FreeTwice'}\n",
                        ["reader.output -> fwd.input", "fwd.output -> user.input"], count=10)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("snabbpy: error: packet 0x"), proc.stderr
    assert "freed twice in app 'user' (FreeTwice)" in errors[0]
    assert "Traceback" not in proc.stderr
    assert nothing_left(tmp_path)


def test_a_packet_misused_while_a_worker_stops_is_reported_too(tmp_path):
    proc, report = run_graph(tmp_path, "  user: {class: 'userapps:FreeTwiceOnStop', "
                                       "worker: w1}\n", ["reader.output -> user.input"],
                             count=10)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("snabbpy: error: worker 'w1': packet 0x")
    assert "freed twice in app 'user' (stopped)" in errors[0]  # as in one process
    assert report["workers"]["w1"]["exit"] == 1
    assert nothing_left(tmp_path)
