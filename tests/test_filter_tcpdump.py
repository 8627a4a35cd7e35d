"""PcapFilter against tcpdump: over crafted and real captures, for each of
many expressions, PcapFilter passes exactly the records that
``tcpdump -r FILE -w OUT EXPR`` selects (compared by record index, which
each record carries as its timestamp). Needs tcpdump and libpcap
(scripts/install-netutils.sh); the real capture needs root too."""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from filter_frames import frames
from helpers import SNABBPY, drain, fill, need_libpcap, need_root, wire

from snabbpy.apps.filter import PcapFilter
from snabbpy.apps.socket import netns
from snabbpy.lib import bpf, pcap

EXPRESSIONS = [
    "tcp", "udp", "icmp", "arp", "ip", "ip6", "sctp",
    "tcp port 80", "tcp port 80 and not src net 10.0.0.0/8", "udp dst port 53",
    "portrange 1000-6000", "tcp src portrange 1-1024", "port 22 or port 443",
    "host 192.168.1.10", "src host 10.0.0.1 or dst host 8.8.8.8", "net 192.168.0.0/16",
    "not net 10.0.0.0/8", "dst net 172.16.0.0 mask 255.255.0.0",
    "vlan", "vlan 10", "vlan 10 and vlan 300", "vlan and tcp port 80", "vlan and ip6",
    "ip6 host 2001:db8::1", "ip6 and tcp port 443", "icmp6", "ip6 net 2001:db8::/32",
    "ip6 multicast", "ip6[40] == 128",
    "len > 200", "len <= 100", "greater 300", "less 80",
    "tcp[13] & 2 != 0", "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "tcp[tcpflags] & tcp-rst != 0", "ip[8] == 1", "ip proto 132", "ip[0] & 0xf > 5",
    "ip[6:2] & 0x1fff != 0", "icmp[icmptype] == icmp-echo", "icmp[0] = 11 or icmp[0] = 3",
    "ether host 02:00:00:00:00:01", "ether broadcast", "ether multicast", "ip multicast",
    "ether dst ff:ff:ff:ff:ff:ff and arp", "arp[6:2] = 2", "ether proto 0x88b5",
    "not ip and not ip6", "(tcp or udp) and port 80 and len > 100", "mpls",
    "ether src 02:00:00:00:00:02 and not broadcast", "udp[8:4] = 0",
    "ip and not tcp and not udp", "tcp and (tcp[tcpflags] & tcp-fin) != 0",
]


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Compiled filters go to a directory of this test session."""
    monkeypatch.setenv("SNABBPY_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def need_tcpdump() -> None:
    """Fails under CI, skips elsewhere, without tcpdump or libpcap."""
    if shutil.which("tcpdump") is None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            "needs tcpdump: run scripts/install-netutils.sh")
    need_libpcap()


def write_indexed(path: Path, payloads: list[bytes]) -> None:
    """A pcap file whose record i has timestamp i seconds."""
    path.write_bytes(pcap.build_file(
        [(pcap.RecordHeader(i, 0, len(p), len(p)), p) for i, p in enumerate(payloads)]))


def tcpdump_selects(path: Path, expression: str, out: Path) -> list[int]:
    """Indices of the records of ``path`` that tcpdump's filter selects."""
    subprocess.run(["tcpdump", "-r", str(path), "-w", str(out), expression],
                   check=True, capture_output=True, timeout=60)
    return [r.ts_sec for r, _ in pcap.iter_records(out.read_bytes())]


def pcapfilter_selects(payloads: list[bytes], expression: str) -> list[int]:
    """Indices of the payloads PcapFilter passes on ``output``; the others
    must come out of ``rejected``, and the counters must add up."""
    app = PcapFilter({"filter": expression, "linktype": "EN10MB", "codegen": True})
    assert app.program.compiled, app.how
    wire(app, ["input"], ["output", "rejected"])
    passed, rejected = [], []
    for start in range(0, len(payloads), 500):
        chunk = payloads[start:start + 500]
        fill(app.input["input"], chunk)
        app.push()
        passed += drain(app.output["output"])
        rejected += drain(app.output["rejected"])
    index = {}
    for i, p in enumerate(payloads):
        index.setdefault(p, []).append(i)
    assert sorted(passed + rejected) == sorted(payloads)
    assert app.stats["passed"] == len(passed) and app.stats["rejected"] == len(rejected)
    return sorted(i for p in set(passed) for i in index[p])


def compare(capture: Path, payloads: list[bytes], tmp_path: Path,
            expressions: list[str]) -> dict[str, int]:
    """Checks every expression; returns how many records each selected."""
    selected = {}
    for n, expression in enumerate(expressions):
        want = tcpdump_selects(capture, expression, tmp_path / f"out{n}.pcap")
        got = pcapfilter_selects(payloads, expression)
        assert got == want, f"{expression!r}: PcapFilter {len(got)} vs tcpdump {len(want)}"
        # The interpreter, through the numpy mask, must agree too.
        mask = bpf.compile_expression(expression).match(*as_arrays(payloads))
        assert list(np.flatnonzero(mask)) == want, f"{expression!r}: match() differs"
        selected[expression] = len(want)
    return selected


def as_arrays(payloads: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One buffer with the payloads back to back, their offsets, lengths."""
    lengths = np.array([len(p) for p in payloads], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return np.frombuffer(b"".join(payloads), dtype=np.uint8).copy(), offsets, lengths


def test_crafted_traffic_matches_tcpdump(tmp_path):
    need_tcpdump()
    payloads = frames(800)
    # Each payload unique, so a record is known by its bytes.
    payloads = list(dict.fromkeys(payloads))
    capture = tmp_path / "crafted.pcap"
    write_indexed(capture, payloads)
    selected = compare(capture, payloads, tmp_path, EXPRESSIONS)
    assert len(EXPRESSIONS) >= 30
    # The traffic is diverse enough that almost every expression selects
    # some packets and rejects others: the comparison means something.
    trivial = [e for e, n in selected.items() if n in (0, len(payloads))]
    assert len(trivial) <= 2, trivial


def capture_real_traffic(path: Path, ns: str) -> None:
    """tcpdump on lo in ``ns`` while ping, ping -6, TCP and UDP run."""
    for conf in ("all", "lo"):  # netns.namespace turns IPv6 off; lo only wants it
        netns.run(ns, ["sysctl", "-qw", f"net.ipv6.conf.{conf}.disable_ipv6=0"])
    cmd = netns.command(ns, ["tcpdump", "-Z", "root", "-U", "--immediate-mode", "-n", "-i", "lo",
                             "-w", str(path)])
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stderr, selectors.EVENT_READ)
        assert sel.select(timeout=30), "tcpdump did not start"
        assert "listening on" in proc.stderr.readline()
        netns.run(ns, ["ping", "-c", "3", "-i", "0.01", "-s", "300", "127.0.0.1"])
        netns.run(ns, ["ping", "-6", "-c", "3", "-i", "0.01", "::1"])
        talk = ("import socket\n"
                "for fam, host in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):\n"
                "    srv = socket.socket(fam); srv.bind((host, 8080)); srv.listen()\n"
                "    c = socket.create_connection((host, 8080)); a, _ = srv.accept()\n"
                "    c.sendall(b'x' * 3000); a.recv(5000); a.sendall(b'y' * 10); c.close()\n"
                "    a.close(); srv.close()\n"
                "    u = socket.socket(fam, socket.SOCK_DGRAM)\n"
                "    for n in (10, 500): u.sendto(b'z' * n, (host, 53))\n")
        netns.run(ns, [sys.executable, "-c", talk])
        time.sleep(1.5)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


@pytest.mark.root
def test_real_traffic_matches_tcpdump(tmp_path):
    need_root("tcpdump", "ip", "ping")
    need_tcpdump()
    raw = tmp_path / "lo.pcap"
    with netns.namespace(f"snabbpy-flt-{os.getpid()}") as ns:
        capture_real_traffic(raw, ns)
    payloads = [p for _, p in pcap.iter_records(raw.read_bytes())]
    assert len(payloads) >= 20
    # Tag each record uniquely (timestamps = indices) for the comparison;
    # identical frames (TCP acks) keep one copy.
    payloads = list(dict.fromkeys(payloads))
    capture = tmp_path / "indexed.pcap"
    write_indexed(capture, payloads)
    compare(capture, payloads, tmp_path, EXPRESSIONS)


def test_the_example_graph_splits_a_capture_as_tcpdump_does(tmp_path):
    need_tcpdump()
    payloads = list(dict.fromkeys(frames(400, seed=80)))
    write_indexed(tmp_path / "snabbpy-capture.pcap", payloads)
    example = Path(__file__).resolve().parent.parent / "configs" / "filter-web.yaml"
    (tmp_path / "graph.yaml").write_text(example.read_text())
    subprocess.run([*SNABBPY, "run", "graph.yaml", "--report-interval", "0"], cwd=tmp_path,
                   check=True, capture_output=True, timeout=120)
    expression = "tcp port 80 and not src net 10.0.0.0/8"
    want = tcpdump_selects(tmp_path / "snabbpy-capture.pcap", expression, tmp_path / "t.pcap")
    kept = [r.ts_sec for r, _ in pcap.iter_records((tmp_path / "web.pcap").read_bytes())]
    other = [r.ts_sec for r, _ in pcap.iter_records((tmp_path / "other.pcap").read_bytes())]
    assert want and kept == want
    assert sorted(kept + other) == list(range(len(payloads)))
