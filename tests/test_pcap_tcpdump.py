"""Interop with tcpdump: captures made by ``tcpdump -w`` pass through a
``snabbpy run`` graph PcapReader -> PcapWriter byte for byte, and tcpdump
reads what PcapWriter writes. Needs root (a network namespace) and
tcpdump (scripts/install-netutils.sh)."""

import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SNABBPY, need_root

from snabbpy.apps.socket import netns
from snabbpy.lib import pcap

pytestmark = [pytest.mark.interop, pytest.mark.root]


def tcpdump_capture(path: Path, ns: str, sizes: list[int], extra: tuple[str, ...] = ()) -> None:
    """Captures UDP datagrams of ``sizes`` sent on lo inside ``ns``."""
    cmd = netns.command(ns, ["tcpdump", "-Z", "root", "-U", "-n", "-i", "lo", *extra,
                             "-w", str(path), "udp"])
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stderr, selectors.EVENT_READ)
        assert sel.select(timeout=30), "tcpdump did not start"
        assert "listening on" in proc.stderr.readline()
        send = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "for n in map(int,sys.argv[1:]): s.sendto(bytes(range(256))*(n//256)"
                "+bytes(n%256),('127.0.0.1',9))\n")
        netns.run(ns, [sys.executable, "-c", send, *map(str, sizes)])
        deadline_reads = 0
        while len(list(pcap.iter_records(path.read_bytes()))) < len(sizes):
            deadline_reads += 1
            assert deadline_reads < 3000, "tcpdump did not write the packets"
            subprocess.run(["sleep", "0.01"])
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def snabbpy_run(tmp_path: Path, yaml: str) -> subprocess.CompletedProcess:
    cfg = tmp_path / "graph.yaml"
    cfg.write_text(yaml)
    return subprocess.run([*SNABBPY, "run", str(cfg), "--duration",
                           "1", "--report-interval", "0"], capture_output=True, text=True,
                          timeout=120, check=True)


def copy_graph(src: Path, dst: Path, nanosecond: bool = False) -> str:
    return f"""
apps:
  reader: {{class: pcap.PcapReader, config: {{path: "{src}"}}}}
  writer:
    class: pcap.PcapWriter
    config: {{path: "{dst}", nanosecond: {str(nanosecond).lower()}}}
links:
  - reader.output -> writer.input
"""


SIZES = [0, 1, 18, 100, 255, 256, 1000, 1472, 4000, 8000]


@pytest.mark.parametrize("nanosecond", [False, True], ids=["micro", "nano"])
def test_tcpdump_capture_round_trips_byte_for_byte(tmp_path, nanosecond):
    need_root("tcpdump", "ip")
    original, copy = tmp_path / "tcpdump.pcap", tmp_path / "copy.pcap"
    extra = ("--time-stamp-precision=nano",) if nanosecond else ()
    with netns.namespace(f"snabbpy-pcap-{os.getpid()}") as ns:
        tcpdump_capture(original, ns, SIZES, extra)
    data = original.read_bytes()
    assert pcap.parse_file_header(data).nanosecond == nanosecond
    assert len(list(pcap.iter_records(data))) == len(SIZES)
    snabbpy_run(tmp_path, copy_graph(original, copy, nanosecond))
    assert copy.read_bytes() == data


def test_tcpdump_reads_what_pcapwriter_writes(tmp_path):
    need_root("tcpdump")
    frames = [(pcap.RecordHeader(1700000000, i, 60, 60),
               bytes.fromhex("ffffffffffff02000000000108060001080006040001")
               + bytes(38)) for i in range(100)]
    original, copy = tmp_path / "arp.pcap", tmp_path / "copy.pcap"
    original.write_bytes(pcap.build_file(frames))
    snabbpy_run(tmp_path, copy_graph(original, copy))
    read = subprocess.run(["tcpdump", "-r", str(copy), "-nn", "-tt"], capture_output=True,
                          text=True, check=True)
    lines = read.stdout.splitlines()
    assert len(lines) == 100
    assert all("ARP" in line for line in lines) and lines[0].startswith("1700000000.000000")
