"""Apps that parse Ethernet refuse, when the graph is configured, a
capture of another link type read straight into them: one line naming
both apps and both link types, exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import SNABBPY, need_libpcap

from snabbpy.core import config
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine
from snabbpy.lib import pcap

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
IPV4 = bytes.fromhex("4500001c000000004011") + bytes(18)  # a bare IPv4/UDP header


def capture(path: Path, linktype: int, frame: bytes = IPV4, count: int = 3) -> str:
    h = pcap.FileHeader(linktype=linktype)
    path.write_bytes(pcap.build_file(
        [(pcap.RecordHeader(0, 0, len(frame), len(frame)), frame)] * count, h))
    return str(path)


def reader_into(path: str, cls: str, conf: dict | None = None, port: str = "input"):
    c = config.new()
    config.app(c, "reader", "pcap.PcapReader", {"path": path})
    config.app(c, "parser", cls, conf or {})
    config.app(c, "sink", "basic.Sink")
    config.link(c, f"reader.output -> parser.{port}")
    return c


@pytest.mark.parametrize("cls, conf, port", [
    ("rss.RSS", {}, "input"),
    ("filter.PcapFilter", {"filter": "udp"}, "input"),
    ("myapps:MacSwap", {}, "input"),
    ("fastapps:L2SwitchVector", {}, "p1"),
    ("fastapps:TTLDecrement", {}, "input"),
])
def test_an_ethernet_parser_refuses_a_raw_ip_capture(tmp_path, monkeypatch, cls, conf, port):
    if cls.startswith("filter"):
        need_libpcap()
    monkeypatch.syspath_prepend(str(CONFIGS))
    e = Engine()
    try:
        with pytest.raises(ConfigError) as err:
            e.configure(reader_into(capture(tmp_path / "raw.pcap", 101), cls, conf, port))
    finally:
        e.stop()
    assert str(err.value).startswith("app 'parser' (")
    assert str(err.value).endswith(" parses Ethernet (link type 1) frames, but app 'reader' "
                                   "sends RAW (IP) (link type 101) on 'output'")


def test_a_filter_compiled_for_raw_ip_takes_a_raw_ip_capture(tmp_path):
    need_libpcap()
    c = reader_into(capture(tmp_path / "raw.pcap", 101), "filter.PcapFilter",
                    {"filter": "udp", "linktype": "RAW"})
    config.link(c, "parser.output -> sink.input")
    e = Engine()
    e.configure(c)
    for _ in range(5):
        e.breathe()
    assert e.apps["parser"].stats["passed"] == 3
    e.stop()


@pytest.mark.parametrize("linktype", [1, 0x04000001])  # Ethernet, with an FCS length too
def test_ethernet_captures_go_in(tmp_path, linktype):
    frame = bytes(12) + b"\x08\x00" + IPV4
    e = Engine()
    e.configure(reader_into(capture(tmp_path / "eth.pcap", linktype, frame), "rss.RSS"))
    e.stop()


def test_the_refusal_is_one_line_and_exit_2(tmp_path):
    capture(tmp_path / "cooked.pcap", 113)
    shutil.copy(CONFIGS / "rss.yaml", tmp_path / "g.yaml")
    (tmp_path / "g.yaml").write_text(
        "apps:\n  reader: {class: pcap.PcapReader, config: {path: cooked.pcap}}\n"
        "  rss: {class: rss.RSS}\n  sink: {class: basic.Sink}\n"
        "links:\n  - reader.output -> rss.input\n  - rss.out0 -> sink.input\n")
    proc = subprocess.run([*SNABBPY, "run", "g.yaml", "--report-interval", "0"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "SNABBPY_SHM": str(tmp_path / "shm")})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == ("snabbpy: error: g.yaml: app 'rss' (RSS) parses Ethernet (link type 1)"
                           " frames, but app 'reader' sends LINUX_SLL (Linux cooked) "
                           "(link type 113) on 'output'\n")
