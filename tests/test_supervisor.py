"""The supervisor with fake workers (no process, no traffic): what it
orders each worker, how it names one that died or failed, when it calls
the whole graph finished, and that it leaves no ring behind."""

import os
import socket

import pytest

from snabbpy.core import config, registry
from snabbpy.core.counter import Counters
from snabbpy.core.engine import Engine
from snabbpy.workers.channel import Channel
from snabbpy.workers.child import STATUS, STATUS_FILE
from snabbpy.workers.supervisor import Supervisor, WorkerFailed

GRAPH = {
    "apps": {"src": {"class": "basic.Source"},
             "a": {"class": "basic.Join", "worker": "w1"},
             "sink": {"class": "basic.Sink"}},
    "links": ["src.output -> a.input", "a.output -> sink.input"],
}


class FakeWorker:
    """Plays a worker process: what it says is queued before the supervisor
    asks; ``orders()`` is what the supervisor told it."""

    def __init__(self, pid: int, says: list[dict]) -> None:
        mine, theirs = socket.socketpair()
        self.channel, self.peer, self.pid = Channel(mine), Channel(theirs), pid
        self.status: int | None = None
        for message in says:
            self.peer.send(message)

    def orders(self) -> list[dict]:
        return self.peer.receive(timeout=0)

    def poll(self):
        return self.status

    def kill(self):
        self.status = -9

    def wait(self, timeout=None):
        return self.status if self.status is not None else 0


@pytest.fixture
def world(tmp_path, shm):
    fakes: dict[str, FakeWorker] = {}
    says: dict[str, list[dict]] = {}

    def start(name):
        fakes[name] = FakeWorker(1000 + len(fakes), says.get(name, [{"op": "ready"}]))
        return fakes[name]

    engine = Engine(clock=lambda: 0)
    sup = Supervisor(engine, start=start, ring_dir=tmp_path / "rings")
    yield sup, fakes, says
    engine.stop()
    sup.close()


def test_configure_starts_each_worker_with_the_whole_graph_and_its_cpu(world):
    sup, fakes, _ = world
    sup.configure(config.from_dict({**GRAPH, "workers": {"w1": {"cpu": 0}}}))
    (start,) = fakes["w1"].orders()
    assert start["op"] == "start" and start["cpu"] == 0
    assert start["cpus"] == sorted(os.sched_getaffinity(0))  # for a worker without a cpu
    assert set(start["doc"]["apps"]) == {"src", "a", "sink"}
    assert start["ring_dir"] == str(sup.ring_dir)
    assert set(sup.engine.apps) == {"src", "sink", "src-output-tx", "sink-input-rx"}
    assert sorted(p.name for p in sup.ring_dir.iterdir()) == \
        ["a.output->sink.input@w1-main", "src.output->a.input@main-w1"]


def test_a_worker_killed_by_a_signal_is_named_with_the_signal(world):
    sup, fakes, _ = world
    sup.configure(config.from_dict(GRAPH))
    fakes["w1"].status = -9
    sup.engine.now = 10**9
    assert sup.done()
    assert str(sup.failure) == "worker 'w1' (pid 1000) killed by signal SIGKILL"
    assert sup.failure.worker == "w1"


def test_an_app_raising_in_a_worker_is_reported_with_the_users_frames(world):
    sup, fakes, _ = world
    sup.configure(config.from_dict(GRAPH))
    fakes["w1"].peer.send({"op": "failed", "kind": "app", "frames": "  File mine.py, line 3",
                           "error": "app 'a' (Join) failed in push(): RuntimeError: boom"})
    failure = sup.check()
    assert str(failure) == "worker 'w1': app 'a' (Join) failed in push(): RuntimeError: boom"
    assert failure.frames == "  File mine.py, line 3"


def test_a_worker_that_refuses_its_graph_is_a_config_error(world):
    sup, _, says = world
    says["w1"] = [{"op": "failed", "kind": "config", "error": "app 'a': no such thing"}]
    with pytest.raises(config.ConfigError, match="worker 'w1': app 'a': no such thing"):
        sup.configure(config.from_dict(GRAPH))


def test_a_worker_that_dies_while_starting_is_named(world):
    sup, _, says = world
    says["w1"] = []

    def start(name):
        fake = FakeWorker(77, [])
        fake.status = -11
        fake.peer.close()  # as a crashed process's end of the socket
        return fake
    sup.start = start
    with pytest.raises(WorkerFailed, match=r"worker 'w1' \(pid 77\) killed by signal SIGSEGV"):
        sup.configure(config.from_dict(GRAPH))


def test_stop_orders_every_worker_to_stop_and_keeps_its_report(world):
    sup, fakes, _ = world
    sup.configure(config.from_dict(GRAPH))
    fakes["w1"].orders()
    packets = {"allocated": 5, "freed": 5}
    fakes["w1"].peer.send({"op": "report", "counters": {"links": {}, "apps": {"a": {}}},
                           "texts": {}})
    fakes["w1"].peer.send({"op": "stopped", "packets": packets})
    sup.stop()
    assert fakes["w1"].orders() == [{"op": "stop"}]
    assert sup.handles["w1"].report["counters"]["apps"] == {"a": {}}
    assert sup.packets_left() == {"w1": 0}


def _status(pid: int, quiet: int, checks: int) -> None:
    c = Counters(STATUS, registry.process_dir(pid) / STATUS_FILE)
    c["quiet"], c["checks"] = quiet, checks


def test_the_graph_is_finished_only_after_two_quiet_looks_by_every_worker(world):
    sup, fakes, _ = world
    doc = {"apps": {"a": {"class": "basic.Join", "worker": "w1"}}, "links": []}
    sup.configure(config.from_dict(doc))
    looks = iter(range(1, 100))

    def look(quiet: int, checks: int) -> bool:
        _status(1000, quiet, checks)
        sup.engine.now = next(looks) * 10**9
        return sup.done()

    assert not look(quiet=0, checks=1)
    assert not look(quiet=1, checks=2)   # first quiet look
    assert not look(quiet=1, checks=2)   # the worker did not look again meanwhile
    assert look(quiet=1, checks=3)
    assert sup.finished and sup.failure is None


def test_moving_an_app_stops_a_worker_left_empty_and_retires_its_rings(world):
    sup, fakes, says = world
    sup.configure(config.from_dict(GRAPH))
    fakes["w1"].orders()
    fakes["w1"].peer.send({"op": "stopped", "packets": {"allocated": 0, "freed": 0}})
    moved = {**GRAPH, "apps": {**GRAPH["apps"], "a": {"class": "basic.Join", "worker": "w2"}}}
    sup.configure(config.from_dict(moved))
    assert fakes["w1"].orders() == [{"op": "stop"}]
    assert "w1" not in sup.handles and "w2" in sup.handles
    assert sorted(p.name for p in sup.ring_dir.iterdir()) == \
        ["a.output->sink.input@w2-main", "src.output->a.input@main-w2"]
    assert set(sup.retired) == {"src.output -> a.input", "a.output -> sink.input"}
    sup.close()
    assert not sup.ring_dir.exists()
