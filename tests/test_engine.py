"""The engine: configuring, reconfiguring, breathing, ticks and timers."""

import time

import pytest

from snabbpy.apps.basic import Sink, Source, Tee
from snabbpy.core import config, packet
from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine
from snabbpy.core.timer import Timer

pytestmark = pytest.mark.usefixtures("no_leaks")


class FakeClock:
    """A clock tests advance by hand (nanoseconds)."""

    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now


class Recorder(App):
    """Forwards input to output and records what the engine calls."""

    config = {"label": Param(str, default="")}
    calls: list = []

    def __init__(self, conf):
        self.label = conf["label"]
        Recorder.calls.append(("init", self.name, self.label))

    def push(self):
        Recorder.calls.append(("push", self.name))
        i, o = self.input.get("input"), self.output.get("output")
        while i is not None and o is not None and not i.empty():
            o.transmit(i.receive())

    def stop(self):
        Recorder.calls.append(("stop", self.name))


class Reconfigurable(Recorder):
    """A Recorder that can take a new configuration in place."""

    def reconfig(self, conf):
        self.label = conf["label"]
        Recorder.calls.append(("reconfig", self.name, self.label))


def graph(size=60, middle=Recorder, label=""):
    c = config.new()
    config.app(c, "src", Source, {"size": size})
    config.app(c, "mid", middle, {"label": label})
    config.app(c, "sink", Sink)
    config.link(c, "src.output -> mid.input")
    config.link(c, "mid.output -> sink.input")
    return c


@pytest.fixture
def engine():
    Recorder.calls = []
    e = Engine()
    yield e
    e.stop()


def test_configure_starts_apps_and_links_and_breathing_moves_packets(engine):
    engine.configure(graph())
    engine.breathe()
    stats = engine.counters()["links"]
    assert stats["mid.output -> sink.input"]["rxpackets"] == stats["src.output -> mid.input"][
        "txpackets"
    ] > 0


def test_apps_see_their_ports_by_name(engine):
    engine.configure(graph())
    mid = engine.apps["mid"]
    assert list(mid.input) == ["input"] and list(mid.output) == ["output"]
    assert mid.name == "mid"


def test_the_same_configuration_again_changes_nothing(engine):
    engine.configure(graph())
    apps = dict(engine.apps)
    plan = engine.configure(graph())
    assert plan.empty
    assert engine.apps == apps


def test_changed_config_without_reconfig_restarts_the_app_keeping_links(engine):
    engine.configure(graph(label="a"))
    engine.apps["src"].pull()  # packets wait on src.output -> mid.input
    waiting = engine.links["src.output -> mid.input"].nreadable()
    old_link = engine.links["src.output -> mid.input"]
    engine.configure(graph(label="b"))
    assert ("stop", "mid") in Recorder.calls and ("init", "mid", "b") in Recorder.calls
    assert engine.links["src.output -> mid.input"] is old_link
    assert old_link.nreadable() == waiting


def test_changed_config_with_reconfig_keeps_the_instance(engine):
    engine.configure(graph(middle=Reconfigurable, label="a"))
    mid = engine.apps["mid"]
    engine.configure(graph(middle=Reconfigurable, label="b"))
    assert engine.apps["mid"] is mid and mid.label == "b"
    assert ("reconfig", "mid", "b") in Recorder.calls


def test_a_changed_class_restarts_the_app(engine):
    engine.configure(graph(middle=Recorder))
    engine.configure(graph(middle=Reconfigurable))
    assert isinstance(engine.apps["mid"], Reconfigurable)


def test_removing_a_link_frees_its_packets_and_removing_an_app_stops_it(engine):
    engine.configure(graph())
    engine.apps["src"].pull()
    c = config.new()
    config.app(c, "src", Source, {"size": 60})
    engine.configure(c)
    assert ("stop", "mid") in Recorder.calls
    assert set(engine.apps) == {"src"} and not engine.links


def test_packets_are_all_accounted_for_through_runs_and_reconfigurations(engine):
    before = packet.in_use()
    for size in (60, 61, 61, 1500):
        engine.configure(graph(size=size))
        for _ in range(5):
            engine.breathe()
        held_by_apps = 1  # the source's template packet
        assert packet.in_use() - before == engine.packets_held() + held_by_apps


def test_push_runs_upstream_first():
    Recorder.calls = []
    c = config.new()
    config.app(c, "c", Recorder)  # configured first, but downstream
    config.app(c, "a", Recorder)
    config.app(c, "b", Recorder)
    config.link(c, "a.output -> b.input")
    config.link(c, "b.output -> c.input")
    e = Engine()
    e.configure(c)
    Recorder.calls = []
    e.breathe()
    assert [name for _, name in Recorder.calls] == ["a", "b", "c"]
    e.stop()


def test_ticks_run_at_tick_hz_on_the_engine_clock():
    class Ticker(App):
        ticks = 0

        def tick(self):
            Ticker.ticks += 1

    clock = FakeClock()
    e = Engine(clock=clock, tick_hz=1000)
    c = config.new()
    config.app(c, "t", Ticker)
    e.configure(c)
    for _ in range(10):
        clock.now += 1_000_000  # 1 ms
        e.breathe()
    assert Ticker.ticks == 10
    e.stop()


def test_timers_run_when_due():
    clock = FakeClock()
    e = Engine(clock=clock)
    fired = []
    e.activate_timer(Timer(name="t", fn=lambda: fired.append(clock.now), delay_ns=500))
    e.breathe()
    clock.now = 499
    e.breathe()
    clock.now = 500
    e.breathe()
    assert fired == [500]


def test_main_stops_after_duration_on_the_engine_clock():
    clock = FakeClock()
    e = Engine(clock=clock)
    e.configure(graph())
    naps = []

    def sleep(seconds):
        naps.append(seconds)
        clock.now += 1_000_000

    def done():
        clock.now += 1_000_000
        return False

    e.main(duration=0.01, done=done, sleep=sleep)
    assert clock.now >= 10_000_000
    e.stop()


def test_main_stops_when_done_or_asked(engine):
    engine.configure(graph())
    breaths = []
    engine.main(done=lambda: len(breaths.append(1) or breaths) >= 3)
    assert len(breaths) == 3
    engine.request_stop()  # e.g. SIGTERM before main() runs
    engine.main()
    assert engine.breaths == 3
    engine.main(done=lambda: True)  # the request was consumed
    assert engine.breaths == 4


def test_an_idle_engine_naps_longer_up_to_a_limit():
    e = Engine()
    c = config.new()
    config.app(c, "sink", Sink)
    e.configure(c)
    naps = []
    e.main(done=lambda: len(naps) >= 150, sleep=naps.append)
    assert naps[0] < naps[10] and max(naps) == pytest.approx(100e-6)
    e.stop()


def test_an_app_config_error_at_start_names_the_app(engine):
    class Picky(App):
        def __init__(self, conf):
            raise ConfigError("file 'x.pcap' not found")

    c = config.new()
    config.app(c, "reader", Picky)
    with pytest.raises(ConfigError, match="app 'reader': file 'x.pcap' not found"):
        engine.configure(c)


def test_tee_copies_to_every_output(engine):
    c = config.new()
    config.app(c, "src", Source)
    config.app(c, "tee", Tee)
    config.app(c, "sink", Sink)
    config.link(c, "src.output -> tee.input")
    config.link(c, "tee.a -> sink.a")
    config.link(c, "tee.b -> sink.b")
    engine.configure(c)
    for _ in range(3):
        engine.breathe()
    links = engine.counters()["links"]
    assert links["tee.a -> sink.a"]["rxpackets"] == links["tee.b -> sink.b"]["rxpackets"] > 0


class Countdown(App):
    """Sends ``count`` packets, then says it is done."""

    config = {"count": Param(int)}

    def __init__(self, conf):
        self.left = conf["count"]
        self.done = False

    def pull(self):
        o = self.output["output"]
        while self.left and not o.full():
            o.transmit(packet.allocate())
            self.left -= 1
        self.done = self.left == 0


def test_a_graph_whose_inputs_are_exhausted_finishes(engine):
    c = config.new()
    config.app(c, "src", Countdown, {"count": 5000})
    config.app(c, "sink", Sink)
    config.link(c, "src.output -> sink.input")
    engine.configure(c)
    engine.main(done=engine.finished)
    assert engine.counters()["links"]["src.output -> sink.input"]["rxpackets"] == 5000


def test_a_graph_with_a_live_source_never_finishes(engine):
    c = config.new()
    config.app(c, "done", Countdown, {"count": 0})
    config.app(c, "live", Source)
    config.app(c, "sink", Sink)
    config.link(c, "done.output -> sink.in1")
    config.link(c, "live.output -> sink.in2")
    engine.configure(c)
    engine.breathe()
    assert not engine.finished()


def test_a_busywaiting_engine_never_naps():
    e = Engine(busywait=True)
    c = config.new()
    config.app(c, "sink", Sink)
    e.configure(c)
    naps = []
    breaths = []
    e.main(done=lambda: len(breaths.append(1) or breaths) >= 100, sleep=naps.append)
    assert naps == [] and e.breaths == 100
    e.stop()


def test_a_graph_can_run_in_a_thread_while_the_caller_watches():
    from snabbpy.core.engine import running_in_thread

    c = config.new()
    config.app(c, "src", Source)
    config.app(c, "sink", Sink)
    config.link(c, "src.output -> sink.input")
    with running_in_thread(c) as e:
        link = e.links["src.output -> sink.input"]
        for _ in range(10_000):
            if link.counters["rxpackets"] > 0:
                break
            time.sleep(0.001)
        assert link.counters["rxpackets"] > 0
    assert e.apps == {} and e.links == {}  # stopped on the way out
