"""Responder, the host-side app that answers a guest in the VM lab, in an
engine with no VM: a NumberedSource plays the guest."""

import pytest

from snabbpy.core import config
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine
from snabbpy.testing.frames import NumberedSink, NumberedSource

pytestmark = pytest.mark.usefixtures("no_leaks")


def answer_graph(guest_sends: int, count: int, size: int = 60) -> Engine:
    c = config.new()
    config.app(c, "guest", NumberedSource, {"count": guest_sends, "size": 60})
    config.app(c, "answer", "snabbpy.vm.hostapps:Responder", {"count": count, "size": size})
    config.app(c, "capture", "basic.Sink")
    config.app(c, "to_guest", NumberedSink)
    config.link(c, "guest.output -> answer.input")
    config.link(c, "answer.output -> capture.input")
    config.link(c, "answer.reply -> to_guest.input")
    engine = Engine()
    engine.configure(c)
    return engine


def test_responder_answers_with_exactly_count_numbered_frames_once_the_guest_speaks():
    engine = answer_graph(guest_sends=5, count=2500)
    for _ in range(10):
        engine.breathe()
    answer, received = engine.apps["answer"].stats.snapshot(), engine.apps["to_guest"]
    assert answer == {"from_guest": 5, "to_guest": 2500}
    assert (received.received, received.corrupt, received.out_of_order) == (2500, 0, 0)
    assert engine.counters()["links"]["answer.output -> capture.input"]["txpackets"] == 5
    engine.stop()


def test_responder_stays_silent_until_the_guest_sends():
    engine = answer_graph(guest_sends=0, count=100)
    for _ in range(10):
        engine.breathe()
    assert engine.apps["answer"].stats.snapshot() == {"from_guest": 0, "to_guest": 0}
    engine.stop()


def test_responder_frames_are_the_selftests_frames_at_any_size():
    engine = answer_graph(guest_sends=1, count=300, size=1500)
    for _ in range(5):
        engine.breathe()
    sink = engine.apps["to_guest"]  # compares each byte with frame(seq, 1500)
    assert (sink.received, sink.corrupt, sink.out_of_order) == (300, 0, 0)
    engine.stop()


@pytest.mark.parametrize("conf, key", [({"count": -1}, "count"), ({"size": 10}, "size")])
def test_responder_config_errors_name_the_key(conf, key):
    c = config.new()
    config.app(c, "answer", "snabbpy.vm.hostapps:Responder", conf)
    with pytest.raises(ConfigError, match=key):
        Engine().configure(c)
