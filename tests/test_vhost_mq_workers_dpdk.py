"""Each queue pair of a VhostUser served from its own worker: `snabbpy run`
of a YAML graph where pair 1 is a VhostQueue on worker w1 and pair 0 the
VhostUser (which owns the socket) on main or on worker w2, against DPDK's
virtio_user with queues=2 (testpmd txonly, then rxonly). The owner hands
pair 1's memory, rings and eventfds to w1 (the queue handoff) and takes the
ring positions back when testpmd stops: every packet is counted on both
sides, both queues carry traffic, the report covers both processes. On
split and on packed rings (``packed_vq=1``: the positions handed back are
then the 32-bit ring states with both wrap counters).
Needs dpdk-testpmd (scripts/install-dpdk.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_testpmd import TestPmd, need_testpmd

from snabbpy.core import registry
from tests.helpers import live_counters as live
from tests.helpers import wait_for

pytestmark = pytest.mark.interop
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def testpmd_installed():
    """Fails in CI, skips elsewhere, when dpdk-testpmd is missing."""
    need_testpmd()


#: A source for the rxonly test: ``count`` packets of ``size`` bytes, sent
#: as fast as its link takes them once the file ``gate`` exists.
APPS = '''
import os
from snabbpy.core import packet
from snabbpy.core.app import App, Param
from snabbpy.core.native import lib


class GatedSource(App):
    """``count`` packets of ``size`` bytes once the file ``gate`` exists."""
    outputs = ("output",)
    config = {"count": Param(int), "size": Param(int), "gate": Param(str)}

    def __init__(self, conf):
        self.left, self.gate, self.open = conf["count"], conf["gate"], False
        self.template = packet.from_bytes(bytes(conf["size"]))

    def tick(self):
        self.open = self.open or os.path.exists(self.gate)

    def pull(self):
        if self.open and self.left:
            self.left -= lib.link_fill_clone(self.output["output"].c, self.template, self.left)

    def stop(self):
        packet.free(self.template)
'''

PAIRS = '''
  vhost:   {{class: vhost.VhostUser,
            config: {{socket_path: "{sock}", queues: 2, serve: [0]}}{owner}}}
  vhostq1: {{class: vhost.VhostQueue, config: {{socket_path: "{sock}", queue: 1}}, worker: w1}}
'''

TXONLY = '''
apps:{pairs}
  sink0: {{class: basic.Sink{owner}}}
  sink1: {{class: basic.Sink, worker: w1}}
links:
  - vhost.output -> sink0.input
  - vhostq1.output -> sink1.input
'''

RXONLY = '''
apps:{pairs}
  src0: {{class: "mqapps:GatedSource", config: {{count: {count}, size: 60, gate: "{gate}"}}{owner}}}
  src1: {{class: "mqapps:GatedSource", config: {{count: {count}, size: 60, gate: "{gate}"}},
          worker: w1}}
links:
  - src0.output -> vhost.input
  - src1.output -> vhostq1.input
'''

#: Where the owner of the socket runs: the main process, or worker w2.
OWNERS = {"main": "", "w2": ", worker: w2"}
RINGS = ("split", "packed")


def write_graph(tmp_path: Path, template: str, owner: str, **kw) -> Path:
    """The YAML graph ``template`` with the pairs laid out for ``owner``."""
    (tmp_path / "mqapps.py").write_text(APPS)
    sock = str(tmp_path / "vhost.sock")
    pairs = PAIRS.format(sock=sock, owner=OWNERS[owner])
    path = tmp_path / "g.yaml"
    path.write_text(template.format(pairs=pairs, owner=OWNERS[owner], **kw))
    return path


def start_run(graph: Path, report: Path) -> subprocess.Popen:
    """`snabbpy run` of ``graph`` from this tree, writing ``report``."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{graph.parent}"}
    return subprocess.Popen([sys.executable, "-P", "-m", "snabbpy", "run", str(graph),
                             "--report-interval", "0", "--report-json", str(report)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(graph.parent))


def finish(proc: subprocess.Popen, report: Path) -> dict:
    """Stops the run; its merged report, after checking it ended well."""
    proc.terminate()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    r = json.loads(report.read_text())
    for name, w in r["workers"].items():
        assert w["exit"] == 0 and w["packets"]["allocated"] == w["packets"]["freed"], name
    vhost, vhostq1 = r["apps"]["vhost"], r["apps"]["vhostq1"]
    assert vhost["handoff_lost"] == vhost["handoff_errors"] == 0, err
    assert vhostq1["handoff_errors"] == 0 and vhostq1["handoff_connects"] == 1, err
    assert vhost["protocol_errors"] == 0, err
    return r


@pytest.mark.parametrize("ring", RINGS)
@pytest.mark.parametrize("owner", OWNERS)
def test_testpmd_txonly_on_two_queues_served_by_two_workers(tmp_path, shm, owner, ring):
    report = tmp_path / "report.json"
    proc = start_run(write_graph(tmp_path, TXONLY, owner), report)
    try:
        wait_for(lambda: (tmp_path / "vhost.sock").exists(), "the vhost-user socket")
        with TestPmd.virtio_user(str(tmp_path / "vhost.sock"), queues=2,
                                 packed=ring == "packed", forward_mode="txonly",
                                 fwd_cpu=0) as pmd:
            pmd.start_forwarding()
            wait_for(lambda: min(live("vhost").get("txq_packets", 0),
                                 live("vhostq1").get("txq_packets", 0)) >= 10000,
                     "both queues")
            pmd.stop_forwarding()
            sent = pmd.port_stats().tx_packets
            wait_for(lambda: live("vhost")["txq_packets"] + live("vhostq1")["txq_packets"]
                     == sent, "the last packets")
    finally:
        if proc.poll() is None:
            proc.terminate()
    r = finish(proc, report)
    counts = [r["apps"]["vhost"]["txq_packets"], r["apps"]["vhostq1"]["txq_packets"]]
    sinks = [r["links"]["vhost.output -> sink0.input"], r["links"]["vhostq1.output -> sink1.input"]]
    assert counts[0] > 0 and counts[1] > 0 and sum(counts) == sent
    assert [s["rxpackets"] for s in sinks] == counts
    assert sinks[0]["txdrop"] == sinks[1]["txdrop"] == 0
    for app in ("vhost", "vhostq1"):
        bad = {k: v for k, v in r["apps"][app].items()
               if k.startswith("txq_") and k not in ("txq_packets", "txq_bytes", "txq_breaths",
                                                     "txq_chains") and v}
        assert not bad, (app, bad)


@pytest.mark.parametrize("ring", RINGS)
@pytest.mark.parametrize("owner", OWNERS)
def test_two_sources_into_testpmd_rxonly_through_two_workers(tmp_path, shm, owner, ring):
    report, gate, count = tmp_path / "report.json", tmp_path / "gate", 20000
    proc = start_run(write_graph(tmp_path, RXONLY, owner, count=count, gate=gate), report)
    try:
        wait_for(lambda: (tmp_path / "vhost.sock").exists(), "the vhost-user socket")
        with TestPmd.virtio_user(str(tmp_path / "vhost.sock"), queues=2,
                                 packed=ring == "packed", forward_mode="rxonly",
                                 fwd_cpu=0) as pmd:
            pmd.start_forwarding()
            # the owner handles pair 0's requests before it hands pair 1 over
            wait_for(lambda: live("vhostq1").get("handoff_rings_running") == 2,
                     "pair 1 running on w1")
            gate.touch()
            wait_for(lambda: pmd.port_stats().rx_packets >= 2 * count, f"{2 * count} packets")
            received = pmd.port_stats()
    finally:
        if proc.poll() is None:
            proc.terminate()
    r = finish(proc, report)
    vhost, vhostq1 = r["apps"]["vhost"], r["apps"]["vhostq1"]
    assert received.rx_packets == 2 * count and received.rx_bytes == 2 * count * 60
    assert vhost["rxq_packets"] == vhostq1["rxq_packets"] == count
    assert vhost["rxq_drop_not_ready"] == vhostq1["rxq_drop_not_ready"] == 0


def test_the_worker_of_a_pair_killed_is_named_and_the_owner_stops_cleanly(tmp_path, shm):
    import signal

    proc = start_run(write_graph(tmp_path, TXONLY, "main"), tmp_path / "report.json")
    try:
        wait_for(lambda: (tmp_path / "vhost.sock").exists(), "the vhost-user socket")
        with TestPmd.virtio_user(str(tmp_path / "vhost.sock"), queues=2,
                                 forward_mode="txonly", fwd_cpu=0) as pmd:
            pmd.start_forwarding()
            wait_for(lambda: live("vhostq1").get("txq_packets", 0) > 1000, "pair 1 moving")
            w1 = next(pid for pid in registry.list_processes(clean=False)
                      if (registry.process_info(pid) or {}).get("worker") == "w1")
            os.kill(w1, signal.SIGKILL)
            _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.terminate()
    assert proc.returncode == 1
    assert f"worker 'w1' (pid {w1}) killed by signal SIGKILL" in err
    assert "Traceback" not in err
    assert not os.path.exists(tmp_path / "vhost.sock.queues")
