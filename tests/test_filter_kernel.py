"""The ``filter:`` key of RawSocket and Tap runs in the kernel: frames the
expression rejects never reach the app (no userspace filter is in the
graph, so any one that did would show up in the capture). Needs root and
iproute2 (scripts/install-netutils.sh) and libpcap."""

import os
import signal
import subprocess
import sys

import pytest
from helpers import SNABBPY, need_libpcap, need_root, wait_for

from snabbpy.apps.socket import netns
from snabbpy.apps.socket.selftest import frames
from snabbpy.core import config, registry
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine
from snabbpy.lib import pcap

pytestmark = [pytest.mark.root]
WANTED, UNWANTED = bytes.fromhex("88b6"), bytes.fromhex("88b5")
EXPRESSION = "ether proto 0x88b6 and len > 100"

# Sends the frames given in hex out of IFNAME (in its namespace).
SEND = ("import socket, sys, time\n"
        "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)\n"
        "s.bind((sys.argv[1], 0))\n"
        "for f in sys.argv[2:]: s.send(bytes.fromhex(f))\n")


def mixed() -> tuple[list[bytes], list[bytes]]:
    """Frames to send, interleaved, and those the expression selects."""
    sent = [f for pair in zip(frames(40, UNWANTED), frames(40, WANTED), strict=True)
            for f in pair]
    return sent, [f for f in sent if f[12:14] == WANTED and len(f) > 100]


def app_counters(name: str) -> dict:
    pids = registry.list_processes()
    return registry.read_process(pids[0])["apps"].get(name, {}) if pids else {}


def run_until(ns: str, cfg, app: str, count: int, send) -> list[bytes]:
    """Runs ``cfg`` in ``ns``, calls ``send()``, waits for ``count`` frames
    into ``app`` (and a moment more, for any that should not come), stops,
    returns the capture's frames."""
    run = subprocess.Popen(netns.command(ns, [*SNABBPY, "run", str(cfg),
                                              "--report-interval", "0"]),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: app_counters(app) or run.poll() is not None, "the run")
        assert run.poll() is None, run.communicate()[1]
        send()
        wait_for(lambda: app_counters(app).get("rx_packets", 0) >= count, f"{count} frames in")
        subprocess.run(["sleep", "0.5"])
        got = app_counters(app).get("rx_packets", 0)
    finally:
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert got == count
    return [p for _, p in pcap.iter_records((cfg.parent / "rx.pcap").read_bytes())]


def test_rawsocket_filter_drops_in_the_kernel(tmp_path, shm):
    need_root("ip")
    need_libpcap()
    sent, wanted = mixed()
    cfg = tmp_path / "raw.yaml"
    with netns.veth_pair("snabbpy-kflt") as (a, b):
        cfg.write_text(f"""
apps:
  raw: {{class: socket.RawSocket, config: {{ifname: {a.ifname}, filter: "{EXPRESSION}"}}}}
  writer: {{class: pcap.PcapWriter, config: {{path: "{tmp_path / 'rx.pcap'}"}}}}
links:
  - raw.output -> writer.input
""")
        got = run_until(a.netns, cfg, "raw", len(wanted), lambda: netns.run(
            b.netns, [sys.executable, "-c", SEND, b.ifname, *(f.hex() for f in sent)]))
    assert got == wanted


def test_tap_filter_drops_in_the_kernel(tmp_path, shm):
    need_root("ip")
    need_libpcap()
    sent, wanted = mixed()
    tap = "sbkflt0"
    cfg = tmp_path / "tap.yaml"
    cfg.write_text(f"""
apps:
  tap: {{class: tap.Tap, config: {{name: {tap}, filter: "{EXPRESSION}"}}}}
  writer: {{class: pcap.PcapWriter, config: {{path: "{tmp_path / 'rx.pcap'}"}}}}
links:
  - tap.output -> writer.input
""")
    with netns.namespace(f"snabbpy-kflt-{os.getpid()}") as ns:
        # Frames sent out of the TAP device by the namespace's kernel are
        # what the Tap app reads.
        got = run_until(ns, cfg, "tap", len(wanted), lambda: netns.run(
            ns, [sys.executable, "-c", SEND, tap, *(f.hex() for f in sent)]))
    assert got == wanted


@pytest.mark.parametrize("cls,conf", [
    ("socket.RawSocket", {"ifname": "lo", "filter": "tcp port nonsense"}),
    ("tap.Tap", {"name": "sbkfltx", "filter": "tcp port nonsense"}),
])
def test_an_invalid_kernel_filter_is_a_config_error(cls, conf):
    need_libpcap()
    c = config.new()
    config.app(c, "x", cls, conf)
    with pytest.raises(ConfigError, match="app 'x': filter 'tcp port nonsense': "
                                          "unknown port 'nonsense'"):
        Engine().configure(c)
