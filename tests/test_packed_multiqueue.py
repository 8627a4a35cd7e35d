"""Packed rings with two queue pairs, both ends of snabbpy in one process:
vguest (``queues: 2, packed: true, control_queue: true``) and VhostUser
(``queues: 2``) over a vhost-user socket. The driver sets its pairs with
VQ_PAIRS_SET on a packed control queue, the device answers it there, and
then packets cross both pairs (VhostUser echoes each pair back on itself),
counted per queue on both sides, none lost or leaked.

The socket's requests are blocking for vguest (the device's setup, the
control command, its close), so while vguest opens and closes a thread
serves VhostUser's socket; packets move in the test's own loop."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from snabbpy.apps.vguest import VGuest
from snabbpy.apps.vhost import VhostUser
from snabbpy.core import config, packet
from snabbpy.core.link import Link
from snabbpy.lib.virtio.packed_virtq import PackedVirtq

PORTS = (("input", "output"), ("input1", "output1"))
COUNT, SIZE = 500, 300


@contextmanager
def served(vhost: VhostUser):
    """VhostUser's socket served from a thread for as long as it lasts."""
    done = threading.Event()

    def serve():
        while not done.is_set():
            vhost.tick()
            done.wait(0.001)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def echo_device(sock: str) -> VhostUser:
    """A 2-pair VhostUser whose pair k sends back what it receives on pair k."""
    vhost = VhostUser(config.validate("vhost", VhostUser, {"socket_path": sock, "queues": 2}))
    vhost.name = "vhost"
    vhost.input, vhost.output = {}, {}
    for inp, out in PORTS:
        vhost.input[inp] = vhost.output[out] = Link(f"echo {out}")
    vhost.link()
    return vhost


def frame(pair: int, n: int) -> bytes:
    """Packet ``n`` of ``pair``: who it is, then padding."""
    return bytes([pair]) + n.to_bytes(4, "big") + bytes(SIZE - 5)


def test_two_packed_pairs_set_through_the_packed_control_queue(tmp_path, no_leaks):
    sock = str(tmp_path / "v.sock")
    vhost = echo_device(sock)
    with served(vhost):
        nic = VGuest(config.validate("nic", VGuest, {
            "vhost_user": sock, "queues": 2, "packed": True, "control_queue": True}))
    nic.name = "nic"
    nic.input = {inp: Link(inp) for inp, _ in PORTS}
    nic.output = {out: Link(out) for _, out in PORTS}
    nic.link()
    try:
        ctrl = vhost.device.ctrl
        assert ctrl.vring.packed and ctrl.pairs == 2 and vhost.stats["ctrl_pairs_set"] == 1
        assert all(isinstance(vq, PackedVirtq) for pair in nic.device.pairs for vq in pair)
        for k, (inp, _) in enumerate(PORTS):
            for n in range(COUNT):
                nic.input[inp].transmit(packet.from_bytes(frame(k, n)))
        back = {out: [] for _, out in PORTS}
        for _ in range(10000):
            if all(len(v) == COUNT for v in back.values()):
                break
            nic.push()
            vhost.pull()
            vhost.push()
            nic.pull()
            for out, got in back.items():
                link = nic.output[out]
                while not link.empty():
                    p = link.receive()
                    got.append(packet.to_bytes(p))
                    packet.free(p)
        for k, (_, out) in enumerate(PORTS):
            assert back[out] == [frame(k, n) for n in range(COUNT)]  # each on its own pair
        s, g = vhost.stats.snapshot(), nic.stats.snapshot()
        assert s["txq_packets"] == s["txq1_packets"] == s["rxq_packets"] == \
            s["rxq1_packets"] == COUNT
        assert g["tx_packets"] == g["tx1_packets"] == g["rx_packets"] == \
            g["rx1_packets"] == COUNT
        assert s["rxq1_drop_not_ready"] == s["protocol_errors"] == s["ctrl_errors"] == 0
        assert "control queue: running, pairs in use 2 of 2" in vhost.report()
    finally:
        with served(vhost):
            nic.stop()
        vhost.stop()
