"""VGuest over vhost-user when its backend dies and another comes: the
device is torn down with every packet freed and counted, input is dropped
and counted meanwhile, and the next backend gets the whole initialisation
again (client: tried every reconnect_interval; server: listened for)."""

from __future__ import annotations

import pytest

from snabbpy.core import config, packet
from snabbpy.core.engine import Engine
from snabbpy.core.link import Link
from snabbpy.lib.vhost_user import Request
from snabbpy.testing.scripted_backend import ScriptedBackend

R = Request
#: What a backend hears from a driver that brings the device up.
INIT = [R.SET_OWNER, R.GET_FEATURES, R.GET_PROTOCOL_FEATURES, R.SET_PROTOCOL_FEATURES]


class Clock:
    """A hand-moved clock for the reconnect interval."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def vguest(sock: str, **conf):
    """A VGuest on ``sock`` with its ports on plain links: (engine, nic, in, out)."""
    c = config.new()
    config.app(c, "nic", "vguest.VGuest", {"vhost_user": sock, "queue_size": 64, **conf})
    engine = Engine()
    engine.configure(c)
    nic = engine.apps["nic"]
    to_nic, from_nic = Link(), Link()
    nic.input, nic.output = {"input": to_nic}, {"output": from_nic}
    nic.link()
    return engine, nic, to_nic, from_nic


def send(link: Link, n: int) -> None:
    for _ in range(n):
        link.transmit(packet.from_bytes(bytes(60)))


def test_client_reconnects_after_the_backend_dies(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    first = ScriptedBackend(sock)
    engine, nic, to_nic, _ = vguest(sock, reconnect_interval=2.0)
    clock = nic.reconnector.clock = Clock()
    send(to_nic, 10)
    nic.push()  # on the transmit ring; this backend never takes them
    assert nic.device.tx.in_flight() == 10
    first.hang_up()
    nic.tick()
    assert not nic.connected
    assert nic.stats["disconnects"] == 1 and nic.stats["tx_lost_on_disconnect"] == 10
    assert "connecting to the next backend" in nic.report()
    send(to_nic, 5)
    nic.push()
    assert to_nic.empty() and nic.stats["input_dropped_disconnected"] == 5
    for _ in range(3):  # nobody there: one try per interval
        nic.tick()
        nic.tick()  # not due again yet
        clock.now += 2.0
    assert nic.reconnector.endpoint.attempts == 3 and not nic.connected
    second = ScriptedBackend(sock)
    nic.tick()
    assert nic.connected and nic.stats["reconnects"] == 1
    assert second.requests()[:4] == INIT
    bases = [m.payload for m in second.seen if m.request == R.SET_VRING_BASE]
    assert [(b.index, b.num) for b in bases] == [(0, 0), (1, 0)]  # rings from index 0
    send(to_nic, 3)
    nic.push()
    assert nic.device.tx.in_flight() == 3  # traffic goes to the new backend
    engine.stop()
    second.hang_up()


def test_server_listens_again_and_takes_the_next_backend(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    first = ScriptedBackend(sock, client=True)
    engine, nic, to_nic, _ = vguest(sock, is_server=True)
    send(to_nic, 7)
    nic.push()
    first.hang_up()
    nic.tick()
    assert nic.stats["disconnects"] == 1 and nic.stats["tx_lost_on_disconnect"] == 7
    assert "listening for the next backend" in nic.report()
    nic.tick()
    assert not nic.connected
    second = ScriptedBackend(sock, client=True)  # VGuest listens: it connects at once
    nic.tick()
    assert nic.connected and nic.stats["reconnects"] == 1
    assert second.requests()[:4] == INIT
    engine.stop()
    second.hang_up()


def test_a_backend_dying_during_the_new_initialisation_is_tried_again(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    first = ScriptedBackend(sock)
    engine, nic, _, _ = vguest(sock)
    clock = nic.reconnector.clock = Clock()
    first.hang_up()
    nic.tick()
    broken = ScriptedBackend(sock, hang_up_on=R.SET_MEM_TABLE)
    nic.tick()
    broken.join()
    broken.close()
    assert nic.stats["reconnect_failures"] == 1 and not nic.connected
    assert "SET_MEM_TABLE" in nic.report()
    good = ScriptedBackend(sock)
    nic.tick()  # the failed try set the next one an interval later
    assert not nic.connected
    clock.now += 0.5
    nic.tick()
    assert nic.connected and nic.stats["reconnects"] == 1
    engine.stop()
    good.hang_up()


def test_every_queue_pair_comes_back(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    first = ScriptedBackend(sock, queue_pairs=2)
    engine, nic, _, _ = vguest(sock, queues=2)
    assert len(nic.device.pairs) == 2
    first.hang_up()
    nic.tick()
    second = ScriptedBackend(sock, queue_pairs=2)
    nic.tick()
    assert nic.connected and len(nic.device.pairs) == 2
    enabled = {m.payload.index for m in second.seen
               if m.request == R.SET_VRING_ENABLE and m.payload.num == 1}
    assert enabled == {0, 1, 2, 3}
    engine.stop()
    second.hang_up()


def test_stopping_while_disconnected_frees_everything(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    first = ScriptedBackend(sock)
    engine, nic, to_nic, _ = vguest(sock, is_server=False)
    send(to_nic, 4)
    nic.push()
    first.hang_up()
    nic.tick()
    engine.stop()
    assert nic.stats["tx_lost_on_disconnect"] == 4


@pytest.mark.parametrize("bad", [0, -1.0])
def test_reconnect_interval_must_be_positive(tmp_path, bad):
    from snabbpy.core.config import ConfigError

    c = config.new()
    config.app(c, "nic", "vguest.VGuest", {"vhost_user": str(tmp_path / "x"),
                                           "reconnect_interval": bad})
    with pytest.raises(ConfigError, match="reconnect_interval"):
        Engine().configure(c)


def test_a_server_that_cannot_listen_again_tries_an_interval_later(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    first = ScriptedBackend(sock, client=True)
    engine, nic, _, _ = vguest(sock, is_server=True, reconnect_interval=1.0)
    clock = nic.reconnector.clock = Clock()
    first.hang_up()
    nic.reconnector.path = str(tmp_path / "no-such-dir" / "vhost.sock")  # cannot listen
    nic.tick()
    assert not nic.connected and "cannot listen" in nic.reconnector.last_error
    nic.reconnector.path = sock
    nic.tick()
    assert nic.reconnector.endpoint is None  # not due yet
    clock.now += 1.0
    nic.tick()
    assert nic.reconnector.endpoint is not None
    second = ScriptedBackend(sock, client=True)
    nic.tick()
    assert nic.connected and nic.stats["reconnects"] == 1
    engine.stop()
    second.hang_up()


def test_reconnecting_again_and_again_reuses_the_rings_memory(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    backend = ScriptedBackend(sock, queue_pairs=2)
    engine, nic, to_nic, _ = vguest(sock, queues=2)
    clock = nic.reconnector.clock = Clock()
    fresh = nic.ring_memory.fresh
    for n in range(1, 6):
        send(to_nic, 3)
        nic.push()
        backend.hang_up()
        nic.tick()
        clock.now += 1.0
        backend = ScriptedBackend(sock, queue_pairs=2)
        nic.tick()
        assert nic.stats["reconnects"] == n
    assert nic.ring_memory.fresh == fresh  # the four rings, recycled
    assert nic.stats["tx_lost_on_disconnect"] == 15
    engine.stop()
    backend.hang_up()
