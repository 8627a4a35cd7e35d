"""VhostUser in one snabbpy process, vguest (snabbpy's own virtio-net
driver) in another: VhostUser echoes every packet the guest sends back to
it, and every packet must come back intact, with and without MRG_RXBUF,
with RING_EVENT_IDX."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from snabbpy.core import config, packet
from snabbpy.core.app import App, Param
from snabbpy.core.engine import Engine
from snabbpy.lib.virtio.constants import Feature

ECHO = """
apps:
  vhost: {{class: vhost.VhostUser, config: {{socket_path: {sock}, mrg_rxbuf: {mrg}}}}}
links:
  - vhost.output -> vhost.input
"""


class Numbered(App):
    """Sends ``count`` packets of ``size`` bytes, each starting with its
    number, no more than ``window`` ahead of what came back."""

    config = {"count": Param(int), "size": Param(int), "window": Param(int, default=200)}

    def __init__(self, conf: dict) -> None:
        self.conf, self.sent, self.back = conf, 0, None

    def pull(self) -> None:
        out = self.output["output"]
        while (self.sent < self.conf["count"] and self.sent - self.back.received
               < self.conf["window"] and not out.full()):
            body = self.sent.to_bytes(4, "big") * (self.conf["size"] // 4)
            out.transmit(packet.from_bytes(body))
            self.sent += 1


class Checking(App):
    """Counts packets and those whose payload is not four bytes repeated."""

    def __init__(self, conf: dict) -> None:
        self.received = self.corrupt = 0

    def push(self) -> None:
        inp = self.input["input"]
        while not inp.empty():
            p = inp.receive()
            data = packet.to_bytes(p)
            self.corrupt += data != data[:4] * (len(data) // 4)
            self.received += 1
            packet.free(p)


@pytest.fixture
def echo_process(tmp_path):
    def start(mrg: bool) -> tuple[subprocess.Popen, str]:
        sock = str(tmp_path / "vhost.sock")
        graph = tmp_path / "echo.yaml"
        graph.write_text(ECHO.format(sock=sock, mrg=str(mrg).lower()))
        report = tmp_path / "echo.json"
        proc = subprocess.Popen([sys.executable, "-c", "from snabbpy.cli import main; main()",
                                 "run", str(graph),
                                 "--duration", "60", "--report-interval", "0",
                                 "--report-json", str(report)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not (tmp_path / "vhost.sock").exists():
            assert time.monotonic() < deadline and proc.poll() is None, "no socket"
            time.sleep(0.05)
        procs.append(proc)
        return proc, sock

    procs: list[subprocess.Popen] = []
    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("size, mrg, nic", [
    (60, True, {}),
    (1500, True, {"event_idx": True, "queue_size": 1024}),
    (9000, True, {}),
    (1500, False, {}),
])
def test_vguest_packets_come_back_through_vhost_user(echo_process, no_leaks, size, mrg, nic):
    _, sock = echo_process(mrg)
    count = 3000
    c = config.new()
    config.app(c, "source", Numbered, {"count": count, "size": size})
    config.app(c, "nic", "vguest.VGuest", {"vhost_user": sock, **nic})
    config.app(c, "sink", Checking)
    config.link(c, "source.output -> nic.input")
    config.link(c, "nic.output -> sink.input")
    engine = Engine()
    engine.configure(c)
    sink = engine.apps["source"].back = engine.apps["sink"]
    deadline = time.monotonic() + 60
    while sink.received < count and time.monotonic() < deadline:
        engine.breathe()
    # Both ends in-order on packed rings (their defaults): the guest takes
    # the device's one used descriptor a transmit batch.
    features = engine.apps["nic"].device.features
    assert features >> Feature.RING_PACKED & 1 and features >> Feature.IN_ORDER & 1
    engine.stop()
    assert (sink.received, sink.corrupt) == (count, 0)


def test_counters_of_the_vhost_process_are_in_its_json_report(echo_process, tmp_path):
    proc, sock = echo_process(True)
    proc.terminate()
    proc.wait(30)
    counters = json.loads((tmp_path / "echo.json").read_text())
    assert counters["apps"]["vhost"]["connects"] == 0
    assert "txq_bad_addr" in counters["apps"]["vhost"]


def test_neither_vguest_nor_vhost_loses_a_packet(echo_process, tmp_path):
    """The driver's rings and the device's hold packets by design, and give
    them all back when they stop: no app of either process is named."""
    proc, sock = echo_process(True)
    c = config.new()
    config.app(c, "source", "basic.Source", {"size": 1500})
    config.app(c, "nic", "vguest.VGuest", {"vhost_user": sock})
    config.app(c, "sink", "basic.Sink")
    config.link(c, "source.output -> nic.input")
    config.link(c, "nic.output -> sink.input")
    engine = Engine()
    engine.configure(c)
    sink = engine.links["nic.output -> sink.input"]
    deadline = time.monotonic() + 60
    while sink.stats()["rxpackets"] < 20000 and time.monotonic() < deadline:
        engine.breathe()
    engine.stop()
    assert sink.stats()["rxpackets"] >= 20000
    assert engine.lost == {}
    proc.terminate()
    proc.wait(30)
    report = json.loads((tmp_path / "echo.json").read_text())
    assert report["apps"]["vhost"]["connects"] == 1
    assert report["lost_packets"] == {}

