"""Packets a user's app loses, frees twice or frees after sending: the
engine's per-app accounts (core/accounting.py) report the first at the end
of a run, one line per app; C refuses the others (packet.state) and the run
stops with one line naming the packet and the app. Every built-in graph
ends with nothing lost."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import SNABBPY, USER_APPS, write_pcap

from snabbpy.core import accounting, config, packet
from snabbpy.core.app import App
from snabbpy.core.engine import Engine
from snabbpy.core.native import ffi

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

def run_graph(tmp_path: Path, app: str, count: int = 3000, *extra: str):
    """``snabbpy run`` of reader -> the user's ``app`` (-> sink when it has
    an output) over a capture of ``count`` frames."""
    (tmp_path / "userapps.py").write_text(USER_APPS)
    write_pcap(tmp_path / "in.pcap", count)
    sink = app == "SendThenFree"
    (tmp_path / "g.yaml").write_text(
        "apps:\n"
        "  reader: {class: pcap.PcapReader, config: {path: in.pcap}}\n"
        f"  user: {{class: 'userapps:{app}'}}\n"
        + ("  sink: {class: basic.Sink}\n" if sink else "")
        + "links:\n  - reader.output -> user.input\n"
        + ("  - user.output -> sink.input\n" if sink else ""))
    return subprocess.run([*SNABBPY, "run", "g.yaml", "--report-interval", "0", *extra],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "SNABBPY_SHM": str(tmp_path / "shm")})


def test_an_app_that_loses_packets_is_named_at_the_end_of_the_run(tmp_path):
    proc = run_graph(tmp_path, "Leaky", 3000, "--report-json", "r.json")
    assert proc.returncode == 0, proc.stderr
    assert ("snabbpy: warning: app 'user' received 3,000 packets it never sent on or freed"
            in proc.stderr.splitlines()), proc.stderr
    assert "reader" not in proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["lost_packets"] == {"user": 3000}


def test_sending_a_packet_then_freeing_it_stops_the_run_naming_packet_and_app(tmp_path):
    proc = run_graph(tmp_path, "SendThenFree", 10, "--report-json", "r.json")
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("snabbpy: error: packet 0x")
    assert ("freed while a link holds it (sent on, then freed) in app 'user' (SendThenFree)"
            in errors[0])
    assert "offset 0x" in errors[0] and "Traceback" not in proc.stderr
    assert "link report:" in proc.stdout  # the report is still printed
    assert json.loads((tmp_path / "r.json").read_text())["lost_packets"] == {}


def test_freeing_a_packet_twice_stops_the_run(tmp_path):
    proc = run_graph(tmp_path, "FreeTwice", 10)
    assert proc.returncode == 1, proc.stderr
    assert "freed twice in app 'user' (FreeTwice)" in proc.stderr, proc.stderr


def test_a_double_free_is_refused_so_the_freelist_stays_whole():
    p = packet.allocate()
    packet.free(p)
    packet.free(p)
    fault = accounting.take_fault()
    assert fault is not None and fault.kind == "freed twice"
    assert fault.address == int(ffi.cast("uintptr_t", p))
    assert fault.offset == fault.address - packet.memory_base()
    assert packet.double_frees() == 0  # the second free never reached the freelist
    assert accounting.take_fault() is None  # taken once


@pytest.mark.parametrize("misuse, kind", [
    ("send_free", "sent on a link after it was freed"),
    ("send_twice", "sent on a link twice (a link holds it already)"),
    ("free_on_link", "freed while a link holds it (sent on, then freed)"),
])
def test_links_refuse_packets_that_are_not_the_senders(misuse, kind):
    from snabbpy.core.link import Link

    link = Link("l")
    p = packet.allocate()
    if misuse == "send_free":
        packet.free(p)
        link.transmit(p)
        assert link.empty()
    else:
        link.transmit(p)
        link.transmit(p) if misuse == "send_twice" else packet.free(p)
        assert link.nreadable() == 1
        assert link.drain() == 1
    assert accounting.take_fault().kind == kind
    assert packet.double_frees() == 0


class Batched(App):
    """Frees a received batch, then frees its packets again one by one."""

    def push(self) -> None:
        b = self.input["input"].receive_batch()
        pk = list(b)
        b.free()
        for p in pk:
            packet.free(p)


class Once(App):
    """Sends three packets, once."""

    def pull(self) -> None:
        if not getattr(self, "sent", False):
            self.sent = True
            for _ in range(3):
                self.output["output"].transmit(packet.from_bytes(b"x" * 60))


def test_a_batch_freed_then_freed_again_is_a_fault_in_that_app():
    c = config.new()
    config.app(c, "once", Once)
    config.app(c, "batched", Batched)
    config.link(c, "once.output -> batched.input")
    e = Engine()
    e.configure(c)
    with pytest.raises(accounting.PacketFault, match=r"freed twice in app 'batched' \(Batched\)"
                       r" \(2 more misuses refused\)"):
        for _ in range(3):
            e.breathe()
    e.stop()
    assert packet.double_frees() == 0


class Hoarder(App):
    """Keeps every packet it receives, and frees them when it stops."""

    def __init__(self, conf: dict) -> None:
        self.kept: list = []

    def push(self) -> None:
        i = self.input["input"]
        while not i.empty():
            self.kept.append(i.receive())

    def stop(self) -> None:
        for p in self.kept:
            packet.free(p)


def test_running_out_of_packet_memory_is_said_once_naming_who_holds_most(capsys):
    c = config.new()
    config.app(c, "source", "basic.Source", {"size": 60})
    config.app(c, "hoarder", Hoarder)
    config.link(c, "source.output -> hoarder.input")
    e = Engine()
    e.configure(c)
    packet.set_max_packets(packet.stats()["created"] + 5000)
    try:
        for _ in range(20):
            e.breathe()
    finally:
        e.stop()
        packet.set_max_packets(1 << 62)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("snabbpy: warning: packet memory exhausted: all ")
    assert "app 'hoarder' holds the most" in lines[0]
    assert "app 'source' was refused one first" in lines[0]
    assert e.lost == {}  # it freed them all when it stopped


RUNNABLE = ["basic1.yaml", "basic-pipeline.yaml", "custom.yaml", "pcap-capture.yaml",
            "pcap-replay.yaml", "filter-web.yaml", "rss.yaml", "fast-l2switch-vector.yaml",
            "fast-macswap-vector.yaml", "fast-ttl-vector.yaml"]


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """The directory where configs/pcap-capture.yaml's file is."""
    d = tmp_path_factory.mktemp("configs")
    write_pcap(d / "snabbpy-capture.pcap", 200)
    return d


@pytest.mark.parametrize("name", RUNNABLE)
def test_no_built_in_graph_loses_a_packet(name, capture, monkeypatch):
    monkeypatch.chdir(capture)
    shutil.copy(CONFIGS / name, capture / name)
    for module in ("myapps.py", "fastapps.py"):
        shutil.copy(CONFIGS / module, capture / module)
    e = Engine()
    e.configure(config.load_yaml(str(capture / name)))
    for _ in range(30):
        e.breathe()
    assert any(link.stats()["txpackets"] for link in e.links.values())
    e.stop()
    assert e.lost == {}


def test_a_repeater_holds_packets_by_design_and_loses_none(tmp_path, no_leaks):
    write_pcap(tmp_path / "in.pcap", 200)
    c = config.new()
    config.app(c, "reader", "pcap.PcapReader", {"path": str(tmp_path / "in.pcap")})
    config.app(c, "repeater", "basic.Repeater")
    config.app(c, "tee", "basic.Tee")
    config.app(c, "sink", "basic.Sink")
    config.link(c, "reader.output -> repeater.input")
    config.link(c, "repeater.output -> tee.input")
    config.link(c, "tee.a -> sink.a")
    config.link(c, "tee.b -> sink.b")
    e = Engine()
    e.configure(c)
    for _ in range(20):
        e.breathe()
    held = e.accounts.balances(e.links, e.config.links)
    assert held["repeater"] == 200  # what it recorded, while it runs
    e.stop()
    assert e.lost == {}
