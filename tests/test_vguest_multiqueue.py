"""VGuest with 2 queue pairs: against DPDK's net_vhost with queues=2 (testpmd
io loops every packet back on the queue it came in on), and against
snabbpy's own VhostUser with queues: 2 in another process, the pairs set
either by SET_VRING_ENABLE or through the control queue (VQ_PAIRS_SET),
on split and on packed rings (the control queue too). Every packet sent on
each pair must come back intact on that pair."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from helpers_testpmd import TestPmd, need_testpmd, wait_for_socket

from snabbpy.apps.vguest.selftest.loopback import WINDOW
from snabbpy.core import config
from snabbpy.core.engine import Engine
from snabbpy.lib.virtio.packed_virtq import PackedVirtq
from snabbpy.testing.frames import NumberedSink, NumberedSource

pytestmark = pytest.mark.interop
PORTS = (("input", "output"), ("input1", "output1"))
RINGS = ("split", "packed")


def loop_two_pairs(sock: str, count: int, size: int, ready=lambda: None, **nic) -> dict:
    """``count`` numbered packets out on each pair of a 2-pair VGuest and
    back; returns what each sink saw, the VGuest's counters, and the kind
    of its rings ("split", "packed" or "mixed")."""
    c = config.new()
    config.app(c, "nic", "vguest.VGuest", {"vhost_user": sock, "queues": 2, **nic})
    for k, (inp, out) in enumerate(PORTS):
        config.app(c, f"source{k}", NumberedSource, {"count": count, "size": size,
                                                    "window": WINDOW})
        config.app(c, f"sink{k}", NumberedSink)
        config.link(c, f"source{k}.output -> nic.{inp}")
        config.link(c, f"nic.{out} -> sink{k}.input")
    engine = Engine()
    engine.configure(c)
    ready()
    kinds = {isinstance(vq, PackedVirtq) for pair in engine.apps["nic"].device.pairs
             for vq in pair}
    sinks = [engine.apps[f"sink{k}"] for k in (0, 1)]
    for k in (0, 1):
        engine.apps[f"source{k}"].sink = sinks[k]
    deadline = time.monotonic() + 60
    while min(s.received for s in sinks) < count and time.monotonic() < deadline:
        engine.breathe()
    result = {"received": [s.received for s in sinks], "corrupt": [s.corrupt for s in sinks],
              "rings": RINGS[kinds.pop()] if len(kinds) == 1 else "mixed",
              **engine.apps["nic"].stats.snapshot()}
    engine.stop()
    return result


def assert_all_back(counts, count):
    assert counts["received"] == [count, count] and counts["corrupt"] == [0, 0]
    assert counts["tx_packets"] == counts["tx1_packets"] == count
    assert counts["rx_packets"] == counts["rx1_packets"] == count
    assert not any(v for k, v in counts.items() if "bad" in k or "oversize" in k)


@pytest.mark.parametrize("ring", RINGS)
def test_two_pairs_through_testpmd_net_vhost(tmp_path, no_leaks, ring):
    need_testpmd()
    sock = str(tmp_path / "vhost.sock")
    with TestPmd.vhost_backend(sock, queues=2, forward_mode="io") as pmd:
        def ready():
            pmd.wait_link_up()
            pmd.start_forwarding()
        counts = loop_two_pairs(sock, 3000, 200, ready, packed=ring == "packed")
        stats = pmd.port_stats()
    assert_all_back(counts, 3000)
    assert counts["rings"] == ring
    assert stats.rx_packets == stats.tx_packets == 6000


ECHO = """
apps:
  vhost: {{class: vhost.VhostUser, config: {{socket_path: {sock}, queues: 2}}}}
links:
  - vhost.output -> vhost.input
  - vhost.output1 -> vhost.input1
"""


@pytest.mark.parametrize("ring", RINGS)
@pytest.mark.parametrize("control_queue", [False, True])
def test_two_pairs_through_snabbpy_vhost_user(tmp_path, no_leaks, control_queue, ring):
    sock = str(tmp_path / "vhost.sock")
    (tmp_path / "echo.yaml").write_text(ECHO.format(sock=sock))
    report = tmp_path / "report.json"
    proc = subprocess.Popen([sys.executable, "-m", "snabbpy", "run", str(tmp_path / "echo.yaml"),
                             "--report-interval", "0", "--report-json", str(report)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_socket(sock)
        counts = loop_two_pairs(sock, 2000, 100, control_queue=control_queue,
                                packed=ring == "packed")
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode()
    assert_all_back(counts, 2000)
    assert counts["rings"] == ring


    vhost = json.loads(report.read_text())["apps"]["vhost"]
    assert vhost["txq_packets"] == vhost["txq1_packets"] == 2000, out
    assert vhost["rxq_packets"] == vhost["rxq1_packets"] == 2000, out
    assert vhost["ctrl_pairs_set"] == int(control_queue), out
    assert vhost["ctrl_errors"] == vhost["protocol_errors"] == 0, out
