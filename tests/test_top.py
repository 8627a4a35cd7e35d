"""`snabbpy top` and `snabbpy ps`: counters of running processes, read
from their shared-memory files; stale directories of dead processes."""

import json
import os
import signal
import subprocess
import time

import pytest
from click.testing import CliRunner
from helpers import SNABBPY

from snabbpy import top
from snabbpy.cli import main
from snabbpy.core import config, registry
from snabbpy.core.engine import Engine
from snabbpy.lib import pcap


def test_rates_are_counter_differences_per_second():
    before = {"links": {"a.o -> b.i": {"txpackets": 100, "txbytes": 6000}}, "apps": {}}
    after = {"links": {"a.o -> b.i": {"txpackets": 300, "txbytes": 18000}}, "apps": {}}
    assert top.rates(before, after, 2.0)["links"]["a.o -> b.i"] == {
        "txpackets": 100.0, "txbytes": 6000.0}


def test_link_file_names_map_back_to_specs():
    spec = "my-app.out_1 -> b.in"
    assert registry.link_spec(registry.safe_name(spec)) == spec


def test_read_process_sees_a_publishing_engine(shm):
    c = config.new()
    config.app(c, "src", "basic.Source", {"size": 60})
    config.app(c, "sink", "basic.Sink")
    config.link(c, "src.output -> sink.input")
    e = Engine(publish=True)
    e.configure(c)
    e.breathe()
    try:
        assert registry.list_processes() == [os.getpid()]
        seen = registry.read_process(os.getpid())
        assert seen["links"] == e.counters()["links"]
        assert seen["links"]["src.output -> sink.input"]["txpackets"] == 1023
    finally:
        e.stop()
    assert registry.list_processes() == []


def test_stale_directories_are_ignored_and_removed(shm):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (shm / str(dead.pid) / "links").mkdir(parents=True)
    assert registry.list_processes() == []
    assert not (shm / str(dead.pid)).exists()


def test_a_reused_pid_is_stale(shm):
    registry.write_process_info("x.yaml")
    info = registry.process_dir() / registry.INFO_FILE
    data = json.loads(info.read_text())
    data["start_ticks"] -= 1  # another process had this pid before
    info.write_text(json.dumps(data))
    assert registry.list_processes() == []


def test_process_info_names_the_config(shm):
    registry.write_process_info("configs/x.yaml")
    try:
        rows = json.loads(CliRunner().invoke(main, ["ps", "--json"]).output)
        assert rows == [{"pid": os.getpid(), "started": pytest.approx(time.time(), abs=60),
                         "config": os.path.abspath("configs/x.yaml")}]
    finally:
        registry.remove_process_dir()


@pytest.mark.parametrize("info", ["[]", '"text"', '{"started": "yesterday", "config": 7}',
                                  '{"started": 1e300}'])
def test_ps_and_top_survive_a_garbled_info_file(shm, info):
    registry.write_process_info("x.yaml")
    (registry.process_dir() / registry.INFO_FILE).write_text(info)
    (shm / "\u00b2").mkdir()  # a digit to str.isdigit(), not to int()
    try:
        r = CliRunner().invoke(main, ["ps"])
        assert r.exit_code == 0, r.output
        assert str(os.getpid()) in r.output
        assert CliRunner().invoke(main, ["top", "--once"]).exit_code == 0
    finally:
        registry.remove_process_dir()


def test_top_without_processes_says_so(shm):
    r = CliRunner().invoke(main, ["top", "--once"])
    assert r.exit_code == 2
    assert "no snabbpy process is running" in r.output


def test_top_of_a_pid_that_is_not_running(shm):
    r = CliRunner().invoke(main, ["top", "999999999", "--once"])
    assert r.exit_code == 2 and "process 999999999 is not a running snabbpy process" in r.output


def snabbpy_top_json(env) -> dict:
    out = subprocess.run([*SNABBPY, "top", "--once", "--json"], env=env, capture_output=True,
                         text=True, check=True, timeout=60)
    return json.loads(out.stdout)


def test_top_matches_the_final_report_of_a_separate_run(tmp_path, shm):
    capture, cfg, report = tmp_path / "in.pcap", tmp_path / "g.yaml", tmp_path / "report.json"
    capture.write_bytes(pcap.build_file(
        [(pcap.RecordHeader(i, 0, 60, 60), bytes(60)) for i in range(5000)]))
    cfg.write_text(f"""
apps:
  reader: {{class: pcap.PcapReader, config: {{path: "{capture}"}}}}
  sink: {{class: basic.Sink}}
  # A source with no output moves nothing but is never done: it keeps the
  # run going after the capture is read, so top can watch it.
  keepalive: {{class: basic.Source}}
links:
  - reader.output -> sink.input
""")
    env = {**os.environ, "SNABBPY_SHM": str(shm)}
    run = subprocess.Popen([*SNABBPY, "run", str(cfg), "--report-json", str(report),
                            "--report-interval", "0"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        snap: dict = {}
        for _ in range(600):  # a reader without loop moves 5000 packets, then idles
            snap = snabbpy_top_json(env) if registry.list_processes() else {}
            moved = snap.get("links", {}).get("reader.output -> sink.input", {})
            if moved.get("rxpackets") == 5000:  # read, sent and freed: no more changes
                break
            time.sleep(0.05)
        assert snap["pid"] == run.pid
        ps = json.loads(subprocess.run([*SNABBPY, "ps", "--json"], env=env, check=True,
                                       capture_output=True, text=True).stdout)
        assert [(p["pid"], p["config"]) for p in ps] == [(run.pid, str(cfg))]
    finally:
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    final = json.loads(report.read_text())
    assert final.pop("lost_packets") == {}  # no app lost a packet
    assert {"links": snap["links"], "apps": snap["apps"]} == final
    assert final["links"]["reader.output -> sink.input"]["rxpackets"] == 5000
    assert registry.list_processes() == []


def test_the_live_view_shows_rates_and_totals():
    before = {"links": {"a.out -> b.in": {"txpackets": 0, "txbytes": 0, "txdrop": 0}},
              "apps": {"a": {"packets": 0}}}
    after = {"pid": 42, "links": {"a.out -> b.in": {"txpackets": 2_000_000,
                                                    "txbytes": 120_000_000, "txdrop": 5}},
             "apps": {"a": {"packets": 2_000_000}}}
    view = top.format_view(after, top.rates(before, after, 2.0), {"config": "/x.yaml"})
    assert view.splitlines()[0] == "snabbpy top: pid 42  config /x.yaml"
    row = next(line for line in view.splitlines() if line.startswith("a.out -> b.in"))
    assert row.split() == ["a.out", "->", "b.in", "1.00M", "480.00M", "2", "2,000,000", "5"]
    assert "1.00M/s" in view
