"""The snabbpy command: what a user types, and what a user gets wrong."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from snabbpy.cli import main

ROOT = Path(__file__).resolve().parent.parent
SNABBPY = [sys.executable, "-m", "snabbpy"]


def write(tmp_path, text, name="graph.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """
    apps:
      src:  {class: basic.Source, config: {size: 100}}
      sink: {class: basic.Sink}
    links:
      - src.output -> sink.input
"""


def test_run_for_a_duration_prints_load_and_a_link_report(tmp_path):
    path = write(tmp_path, GOOD)
    result = CliRunner().invoke(main, ["run", str(path), "--duration", "0.3",
                                       "--report-interval", "0.1"])
    assert result.exit_code == 0, result.output
    assert "load: time:" in result.output and "Mpps" in result.output
    assert "sent on src.output -> sink.input" in result.output


def test_run_writes_the_final_counters_as_json(tmp_path):
    path, out = write(tmp_path, GOOD), tmp_path / "report.json"
    result = CliRunner().invoke(main, ["run", str(path), "--duration", "0.2",
                                       "--report-json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    link = report["links"]["src.output -> sink.input"]
    assert set(link) == {"txpackets", "txbytes", "rxpackets", "rxbytes", "txdrop"}
    assert link["txpackets"] > 0 and link["txbytes"] == 100 * link["txpackets"]
    assert set(report["apps"]) == {"src", "sink"}


def test_run_the_example_graphs_as_they_stand(tmp_path):
    for name in ("basic1.yaml", "custom.yaml"):
        result = CliRunner().invoke(main, ["run", str(ROOT / "configs" / name),
                                           "--duration", "0.2"])
        assert result.exit_code == 0, (name, result.output)
        assert "link report:" in result.output


BAD_INPUTS = {
    "malformed YAML": ("apps: {src: [\n", "malformed YAML at line"),
    "unknown app class": ("apps:\n  x: {class: basic.Nope}\n", "has no class 'Nope'"),
    "unknown module": ("apps:\n  x: {class: 'nomod:App'}\n", "no module 'nomod'"),
    "unknown config key": (
        "apps:\n  src: {class: basic.Source, config: {sise: 60}}\n",
        "app 'src' (Source): unknown config key 'sise'",
    ),
    "missing config key": (
        "apps:\n  t: {class: basic.Truncate}\n",
        "app 't' (Truncate): missing required config key 'size'",
    ),
    "bad config value": (
        "apps:\n  src: {class: basic.Source, config: {size: big}}\n",
        "config key 'size': expected a number",
    ),
    "value rejected by the app": (
        "apps:\n  src: {class: basic.Source, config: {size: 99999}}\n",
        "app 'src': size 99999 is outside",
    ),
    "link to a missing app": (
        "apps:\n  src: {class: basic.Source}\nlinks: ['src.output -> nobody.input']\n",
        "link 'src.output -> nobody.input': no app named 'nobody'",
    ),
    "malformed link spec": (
        "apps:\n  src: {class: basic.Source}\nlinks: ['src.output => sink.input']\n",
        "link 'src.output => sink.input': malformed",
    ),
    "output port linked twice": (
        "apps:\n  a: {class: basic.Source}\n  b: {class: basic.Sink}\n"
        "links: ['a.out -> b.in1', 'a.out -> b.in2']\n",
        "output port a.out is already linked",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_line_and_exit_status_2(tmp_path, case):
    text, message = BAD_INPUTS[case]
    path = write(tmp_path, text)
    proc = subprocess.run([*SNABBPY, "run", str(path), "--duration", "0.1"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"snabbpy: error: {path}: ")
    assert message in lines[0]


def test_missing_config_file_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml: cannot read: No such file or directory" in result.output


def test_sigterm_stops_a_run_cleanly_with_its_report(tmp_path):
    path = write(tmp_path, GOOD)
    env = dict(os.environ, SNABBPY_SHM=str(tmp_path / "shm"))
    proc = subprocess.Popen([*SNABBPY, "run", str(path), "--report-interval", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    published = tmp_path / "shm" / str(proc.pid) / "links"
    for _ in range(200):  # wait until it runs: it publishes its counters
        if published.exists():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "sent on src.output -> sink.input" in out
    assert not (tmp_path / "shm" / str(proc.pid)).exists(), "counters not cleaned up"


def test_selftest_runs_a_module_selftest():
    result = CliRunner().invoke(main, ["selftest", "core.link"])
    assert result.exit_code == 0 and "link selftest: ok" in result.output


def test_selftest_of_an_unknown_module_is_a_clear_error():
    result = CliRunner().invoke(main, ["selftest", "apps.nope"])
    assert result.exit_code == 2
    assert "no module 'snabbpy.apps.nope'" in result.output


def test_bench_basic1_reports_its_rate():
    result = CliRunner().invoke(main, ["bench", "basic1", "--packets", "200000"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Processed 0.2 million packets in ")
    assert "Mpps)." in result.output


def test_graph_prints_dot(tmp_path):
    result = CliRunner().invoke(main, ["graph", str(write(tmp_path, GOOD))])
    assert result.exit_code == 0
    assert result.output.startswith("digraph snabbpy {")
    assert '"src" -> "sink" [label="output -> input"];' in result.output


def test_run_stops_by_itself_when_its_capture_is_read(tmp_path):
    from snabbpy.lib import pcap

    capture = tmp_path / "in.pcap"
    capture.write_bytes(pcap.build_file(
        [(pcap.RecordHeader(i, 0, 60, 60), bytes(60)) for i in range(3000)]))
    path = write(tmp_path, f"""
        apps:
          reader: {{class: pcap.PcapReader, config: {{path: "{capture}"}}}}
          sink: {{class: basic.Sink}}
        links:
          - reader.output -> sink.input
    """)
    proc = subprocess.run([*SNABBPY, "run", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "3,000 sent on reader.output -> sink.input" in proc.stdout


def test_run_can_busywait(tmp_path):
    result = CliRunner().invoke(main, ["run", str(write(tmp_path, GOOD)), "--duration", "0.1",
                                       "--busywait", "--report-interval", "0"])
    assert result.exit_code == 0, result.output
    assert "sent on src.output -> sink.input" in result.output
