"""Reconfiguring a running graph over real worker processes: an app moves
from one worker to another, the worker left empty stops, traffic goes on."""

import pytest

from snabbpy.core import config
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine
from snabbpy.workers.report import merge, worker_counters
from snabbpy.workers.supervisor import Supervisor


def graph(worker: str | None) -> config.Config:
    return config.from_dict({
        "apps": {"src": {"class": "basic.Source", "config": {"size": 64}},
                 "fwd": {"class": "basic.Join", "worker": worker},
                 "sink": {"class": "basic.Sink"}},
        "links": ["src.output -> fwd.input", "fwd.output -> sink.input"],
    })


def received(sup: Supervisor) -> int:
    return sup.engine.links["sink-input-rx.output -> sink.input"].stats()["rxpackets"]


def test_an_app_moves_to_another_worker_while_the_graph_runs(shm, tmp_path, no_leaks):
    engine = Engine(publish=True)
    sup = Supervisor(engine, ring_dir=tmp_path / "rings")
    try:
        sup.configure(graph("w1"))
        first = sup.handles["w1"].process.pid
        engine.main(done=lambda: received(sup) > 10000 or sup.check() is not None)
        assert sup.failure is None
        sup.configure(graph("w2"))
        assert set(sup.handles) == {"w2"}
        assert sup.handles["w2"].process.pid != first
        before = received(sup)
        engine.main(done=lambda: received(sup) > before + 10000 or sup.check() is not None)
        assert sup.failure is None
        sup.stop()
        assert sup.packets_left() == {"w2": 0}
        merged = merge(sup.placement, worker_counters(sup), sup.ring_counters())
        assert merged["links"]["fwd.output -> sink.input"]["rxpackets"] > 10000
    finally:
        sup.stop()
        engine.stop()
        sup.close()
    assert not (tmp_path / "rings").exists()


def test_an_app_moves_from_the_main_process_to_a_worker_and_back(shm, tmp_path, no_leaks):
    engine = Engine(publish=True)
    engine.configure(graph(None))  # a graph running in one process ...
    engine.main(done=lambda: engine.links["fwd.output -> sink.input"].stats()["rxpackets"] > 1000)
    sup = Supervisor(engine, ring_dir=tmp_path / "rings")  # ... taken over as it runs
    try:
        sup.configure(graph("w1"))
        assert set(sup.handles) == {"w1"} and "fwd" not in engine.apps
        engine.main(done=lambda: received(sup) > 10000 or sup.check() is not None)
        assert sup.failure is None
        sup.configure(graph(None))
        assert sup.handles == {} and "fwd" in engine.apps
        sink = engine.links["fwd.output -> sink.input"]
        engine.main(done=lambda: sink.stats()["rxpackets"] > 1000)
        assert sup.lost_packets() == {}
    finally:
        sup.stop()
        engine.stop()
        sup.close()
    assert engine.lost == {}
    assert not (tmp_path / "rings").exists()


def test_a_plain_engine_refuses_a_graph_with_workers_pointing_to_the_supervisor():
    engine = Engine()
    with pytest.raises(ConfigError) as refused:
        engine.configure(graph("w1"))
    assert str(refused.value) == (
        "app 'fwd' is on worker 'w1', and an Engine runs one process: run a graph with "
        "workers with `snabbpy run`, or from Python with "
        "snabbpy.workers.supervisor.Supervisor(engine).configure(c)")
    assert engine.apps == {} and engine.links == {}  # nothing ran in one process
    engine.stop()
