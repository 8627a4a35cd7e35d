"""RawSocket on real interfaces: frames out of and into a veth joining two
network namespaces the test makes (and always removes). Needs root and
iproute2 (scripts/install-netutils.sh)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SNABBPY, need_root, wait_for

from snabbpy.apps.socket import netns
from snabbpy.apps.socket.selftest import frames
from snabbpy.core import config, registry
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine
from snabbpy.lib import pcap

pytestmark = [pytest.mark.root]
TO_B, TO_A = bytes.fromhex("88b5"), bytes.fromhex("88b6")

# Runs in namespace b: receives `expect` frames of type 88b5 on IFNAME, then
# answers with `reply` frames of type 88b6; prints what it received.
PEER = """
import json, socket, sys
from snabbpy.apps.socket.selftest import frames
ifname, expect, reply = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
s.bind((ifname, 0x88b5))
s.settimeout(60)
print("ready", flush=True)
got = [s.recv(65536).hex() for _ in range(expect)]
for f in frames(reply, bytes.fromhex("88b6")):
    s.send(f)
print(json.dumps(got), flush=True)
"""


def write_pcap(path: Path, payloads: list[bytes]) -> None:
    path.write_bytes(pcap.build_file(
        [(pcap.RecordHeader(0, 0, len(p), len(p)), p) for p in payloads]))


def app_counters(name: str) -> dict:
    pids = registry.list_processes()
    return registry.read_process(pids[0])["apps"].get(name, {}) if pids else {}


def test_selftest_on_the_loopback_of_a_namespace():
    need_root("ip")
    with netns.namespace(f"snabbpy-lo-{os.getpid()}") as ns:
        out = netns.run(ns, [*SNABBPY, "selftest", "apps.socket"], timeout=120)
    assert "socket selftest on lo: ok" in out.stdout


def test_frames_cross_a_veth_both_ways(tmp_path, shm):
    need_root("ip")
    sent = frames(50, TO_B)
    write_pcap(tmp_path / "tx.pcap", sent)
    cfg = tmp_path / "raw.yaml"
    with netns.veth_pair("snabbpy-raw") as (a, b):
        cfg.write_text(f"""
apps:
  reader: {{class: pcap.PcapReader, config: {{path: "{tmp_path / 'tx.pcap'}"}}}}
  raw: {{class: socket.RawSocket, config: {{ifname: {a.ifname}}}}}
  writer: {{class: pcap.PcapWriter, config: {{path: "{tmp_path / 'rx.pcap'}"}}}}
links:
  - reader.output -> raw.input
  - raw.output -> writer.input
""")
        peer = subprocess.Popen(netns.command(b.netns, [sys.executable, "-c", PEER, b.ifname,
                                                        "50", "40"]),
                                stdout=subprocess.PIPE, text=True)
        assert peer.stdout.readline().strip() == "ready"
        run = subprocess.Popen(netns.command(a.netns, [*SNABBPY, "run", str(cfg),
                                                       "--report-interval", "0"]),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            received = json.loads(peer.communicate(timeout=120)[0])
            wait_for(lambda: app_counters("raw").get("rx_packets", 0) >= 40, "40 frames in")
        finally:
            run.send_signal(signal.SIGTERM)
            _, err = run.communicate(timeout=60)
            peer.kill()
    assert run.returncode == 0, err
    assert [bytes.fromhex(f) for f in received] == sent
    back = [p for _, p in pcap.iter_records((tmp_path / "rx.pcap").read_bytes())
            if p[12:14] == TO_A]
    assert back == frames(40, TO_A)


def test_vlan_tags_the_kernel_strips_are_put_back(tmp_path, shm):
    need_root("ip")
    cfg = tmp_path / "vlan.yaml"
    tag = bytes.fromhex("81000005")  # VLAN 5
    tagged = [f[:12] + tag + f[12:] for f in frames(3)]
    # The receiving kernel moves the tag of every frame into metadata
    # before raw sockets see it; RawSocket must put it back.
    send = ("import socket, sys\n"
            "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)\n"
            "s.bind((sys.argv[1], 0))\n"
            "for f in sys.argv[2:]: s.send(bytes.fromhex(f))\n")
    with netns.veth_pair("snabbpy-vlan") as (a, b):
        cfg.write_text(f"""
apps:
  raw: {{class: socket.RawSocket, config: {{ifname: {a.ifname}}}}}
  writer: {{class: pcap.PcapWriter, config: {{path: "{tmp_path / 'rx.pcap'}"}}}}
links:
  - raw.output -> writer.input
""")
        run = subprocess.Popen(netns.command(a.netns, [*SNABBPY, "run", str(cfg),
                                                       "--report-interval", "0"]),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: registry.list_processes() or run.poll() is not None, "the run")
            netns.run(b, [sys.executable, "-c", send, b.ifname, *(f.hex() for f in tagged)])
            wait_for(lambda: app_counters("raw").get("rx_packets", 0) >= 3, "3 frames in")
        finally:
            run.send_signal(signal.SIGTERM)
            _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    got = [p for _, p in pcap.iter_records((tmp_path / "rx.pcap").read_bytes())]
    assert got == tagged


@pytest.mark.parametrize("ifname, message", [
    ("no-such-if0", "ifname 'no-such-if0': no such network interface"),
    ("eth\0", r"ifname 'eth\\x00': not an interface name"),
])
def test_missing_interface_is_a_config_error(ifname, message):
    if os.geteuid():
        pytest.skip("needs root: without it the error is about root, not the interface")
    c = config.new()
    with pytest.raises(ConfigError, match=message):
        config.app(c, "raw", "socket.RawSocket", {"ifname": ifname})
        Engine().configure(c)


def test_without_cap_net_raw_the_error_says_so():
    need_root("ip")
    code = ("from snabbpy.apps.socket.rawsocket import open_raw_socket\n"
            "open_raw_socket('lo')\n")
    # setpriv drops CAP_NET_RAW from the bounding set: root without it.
    out = subprocess.run(["setpriv", "--bounding-set=-net_raw", sys.executable, "-c", code],
                         capture_output=True, text=True)
    assert "ConfigError: a raw socket needs root (CAP_NET_RAW)" in out.stderr
