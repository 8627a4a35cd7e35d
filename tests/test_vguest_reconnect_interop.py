"""VGuest surviving its backend restarting under it: testpmd's net_vhost
(VGuest as client, then as server with testpmd client=1) and snabbpy's
own VhostUser in another process are killed mid-run and a new one started
on the same socket; traffic resumes, and every packet sent is received or
counted by VGuest as lost. Needs dpdk-testpmd (scripts/install-dpdk.sh)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from helpers_testpmd import TestPmd, need_testpmd

from snabbpy.apps.vguest.selftest.loopback import WINDOW, stop_vhost_user
from snabbpy.core import config, packet
from snabbpy.core.engine import Engine
from snabbpy.core.link import Link
from snabbpy.core.spawn import snabbpy_command
from snabbpy.testing.frames import Frames

pytestmark = pytest.mark.interop

TIMEOUT = 60.0


class Loop:
    """Numbered frames into VGuest, what comes back out counted; at most
    ``window`` out at a time (testpmd io drops what finds our ring full)."""

    def __init__(self, sock: str, **conf) -> None:
        c = config.new()
        config.app(c, "nic", "vguest.VGuest",
                   {"vhost_user": sock, "reconnect_interval": 0.1, **conf})
        self.engine = Engine()
        self.engine.configure(c)
        self.nic = self.engine.apps["nic"]
        self.to_nic, self.from_nic = Link(), Link()
        self.nic.input, self.nic.output = {"input": self.to_nic}, {"output": self.from_nic}
        self.nic.link()
        self.frames = Frames(100)
        self.sent = self.received = self.corrupt = 0
        self.seen: set[int] = set()

    @property
    def lost(self) -> int:
        """What VGuest counted lost: in flight at a disconnect, or dropped
        from its input while there was no backend."""
        s = self.nic.stats
        return s["tx_lost_on_disconnect"] + s["input_dropped_disconnected"]

    def step(self, send: bool = True) -> None:
        """One breath of the graph: send, pull, push, tick, count."""
        if send:
            for _ in range(min(32, WINDOW - (self.sent - self.received - self.lost))):
                self.to_nic.transmit(packet.from_bytes(self.frames.get(self.sent)))
                self.sent += 1
        self.nic.pull()
        self.nic.push()
        self.nic.tick()
        while not self.from_nic.empty():
            p = self.from_nic.receive()
            frame = packet.to_bytes(p)
            packet.free(p)
            seq = int.from_bytes(frame[14:18], "big")
            if frame != self.frames.get(seq) or seq in self.seen:
                self.corrupt += 1
            self.seen.add(seq)
            self.received += 1

    def until(self, done, what: str, send: bool = True) -> None:
        """Steps until ``done()``; fails naming ``what`` after TIMEOUT s."""
        deadline = time.monotonic() + TIMEOUT
        while not done():
            assert time.monotonic() < deadline, f"{what}; {self.nic.report()}"
            self.step(send)

    def settle(self) -> None:
        """Steps without sending until nothing more comes back for a while."""
        quiet = 0
        while quiet < 2000:
            before = self.received
            self.step(send=False)
            quiet = quiet + 1 if self.received == before else 0

    def accounted(self) -> bool:
        return self.sent == self.received + self.lost

    def stop(self) -> None:
        self.engine.stop()


@pytest.fixture
def testpmd_installed():
    """Fails in CI, skips elsewhere, when dpdk-testpmd is missing."""
    need_testpmd()


def stop_then_kill(loop: Loop, pmd: TestPmd) -> None:
    """testpmd stops forwarding (it then holds none of our packets), we send
    a window more (left on our transmit ring), and it is killed."""
    pmd.stop_forwarding()
    loop.settle()
    for _ in range(10):
        loop.step()
    assert loop.sent > loop.received  # packets on our ring when it dies
    pmd.kill()


def restart_under(loop: Loop, kill, start_next) -> None:
    """Traffic, the backend killed with packets on our transmit ring, input
    dropped meanwhile, ``start_next()``, traffic again, all accounted."""
    loop.until(lambda: loop.received >= 2000, "no traffic before the restart")
    kill()
    loop.until(lambda: not loop.nic.connected, "the dead backend went unnoticed")
    for _ in range(50):
        loop.step()
    assert loop.nic.stats["input_dropped_disconnected"] > 0
    received = loop.received
    start_next()
    loop.until(lambda: loop.nic.connected, "no reconnect to the new backend")
    loop.until(lambda: loop.received >= received + 2000, "no traffic after the restart")
    loop.until(loop.accounted, "packets neither received nor counted lost", send=False)
    print(f"sent {loop.sent}, received {loop.received}, counted lost {loop.lost}")
    print(loop.nic.report())
    s = loop.nic.stats
    assert s["disconnects"] == s["reconnects"] == 1 and loop.corrupt == 0


def test_vguest_client_survives_testpmd_restarting(tmp_path, no_leaks, testpmd_installed):
    sock = str(tmp_path / "vhost.sock")
    pmds = [TestPmd.vhost_backend(sock, forward_mode="io")]
    pmds[0].start()
    loop = Loop(sock)
    try:
        pmds[0].wait_link_up()
        pmds[0].start_forwarding()

        def start_next():
            os.unlink(sock)  # net_vhost will not bind over the dead one's socket
            pmds.append(TestPmd.vhost_backend(sock, forward_mode="io"))
            pmds[1].start()
            loop.until(lambda: loop.nic.connected, "no reconnect to the new testpmd")
            pmds[1].wait_link_up()
            pmds[1].start_forwarding()

        restart_under(loop, lambda: stop_then_kill(loop, pmds[0]), start_next)
        assert loop.nic.stats["tx_lost_on_disconnect"] > 0
    finally:
        loop.stop()
        for pmd in pmds:
            pmd.close()


def test_vguest_server_survives_testpmd_client_restarting(tmp_path, no_leaks,
                                                          testpmd_installed):
    sock = str(tmp_path / "vhost.sock")
    pmds = [TestPmd.vhost_backend(sock, client=True, forward_mode="io")]
    pmds[0].start(wait=False)
    try:
        pmds[0].wait_ready()
        loop = Loop(sock, is_server=True)
        pmds[0].wait_link_up()
        pmds[0].start_forwarding()

        def start_next():
            pmds.append(TestPmd.vhost_backend(sock, client=True, forward_mode="io"))
            pmds[1].start()  # it connects to VGuest, listening again
            loop.until(lambda: loop.nic.connected, "the new testpmd did not connect")
            pmds[1].wait_link_up()
            pmds[1].start_forwarding()

        restart_under(loop, lambda: stop_then_kill(loop, pmds[0]), start_next)
        assert loop.nic.stats["tx_lost_on_disconnect"] > 0
        loop.stop()
    finally:
        for pmd in pmds:
            pmd.close()


def start_vhost_user_pairs(workdir, sock: str, queues: int) -> subprocess.Popen:
    """``snabbpy run`` of a VhostUser server with ``queues`` pairs, each
    looped back to itself, in another process."""
    yaml = workdir / "loop.yaml"
    loops = "".join(f"  - vhost.output{k or ''} -> vhost.input{k or ''}\n"
                    for k in range(queues))
    yaml.write_text(f"apps:\n  vhost: {{class: vhost.VhostUser, config: {{socket_path: "
                    f"{sock!r}, queues: {queues}}}}}\nlinks:\n{loops}")
    with open(workdir / "vhost.log", "ab") as log:
        return subprocess.Popen(snabbpy_command("run", str(yaml), "--report-interval", "0"),
                                cwd=workdir, stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.parametrize("nic", [{}, {"queues": 2, "control_queue": True}],
                         ids=["one pair", "two pairs and the control queue"])
def test_vguest_survives_snabbpys_vhost_user_restarting(tmp_path, no_leaks, nic):
    """VhostUser in another process, killed mid-traffic: what it held when
    it died (its own links) is lost beyond VGuest's sight, so here the
    count is: received + counted lost + at most one window = sent."""
    sock = str(tmp_path / "vhost.sock")
    queues = nic.get("queues", 1)
    backends = [start_vhost_user_pairs(tmp_path, sock, queues)]
    loop = None
    try:
        deadline = time.monotonic() + TIMEOUT
        while not os.path.exists(sock):
            assert time.monotonic() < deadline, "VhostUser did not listen"
            time.sleep(0.05)
        loop = Loop(sock, **nic)

        def kill():
            backends[0].send_signal(signal.SIGKILL)
            backends[0].wait()

        def start_next():
            backends.append(start_vhost_user_pairs(tmp_path, sock, queues))

        loop.accounted = lambda: 0 <= loop.sent - loop.received - loop.lost <= WINDOW
        restart_under(loop, kill, start_next)
        assert len(loop.nic.device.pairs) == queues
        assert (loop.nic.device.ctrl is not None) == ("control_queue" in nic)
    finally:
        if loop is not None:
            loop.stop()
        for b in backends:
            stop_vhost_user(b)
