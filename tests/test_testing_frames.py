"""The test kit's numbered frames, and the apps that send and check them
(what vguest's selftests and the VM lab's Responder exchange)."""

import pytest

from snabbpy.core import config, packet
from snabbpy.core.engine import Engine
from snabbpy.testing.frames import (
    Frames,
    NumberedSink,
    NumberedSource,
    cycled,
    frame,
    frame_sizes,
    sequence,
)

pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.mark.parametrize("size", [18, 60, 269, 1514])
def test_cached_frames_are_the_plain_frames(size):
    frames = Frames(size)
    assert all(frames.get(seq) == frame(seq, size) for seq in [*range(600), 2**32 + 7])


def test_a_frame_carries_its_number():
    assert sequence(frame(2**32 + 7, 60)) == 7
    assert sequence(frame(5, 17)) == -1


def sink_after(frames: list[bytes], count: int = 10) -> NumberedSink:
    c = config.new()
    config.app(c, "source", NumberedSource, {"count": count, "size": 60})
    config.app(c, "sink", NumberedSink)
    config.link(c, "source.output -> sink.input")
    engine = Engine()
    engine.configure(c)
    engine.breathe()
    link = engine.apps["sink"].input["input"]
    for data in frames:
        link.transmit(packet.from_bytes(data))
    engine.breathe()
    sink = engine.apps["sink"]
    engine.stop()
    return sink


def test_the_sink_tells_intact_corrupt_and_reordered_frames_apart():
    sink = sink_after([frame(11, 60), frame(10, 60)[:-1] + b"\0", b"short"])
    assert (sink.received, sink.out_of_order, sink.corrupt) == (13, 1, 2)


def test_a_frame_too_short_for_its_number_is_compared_with_the_one_due():
    sink = sink_after([frame(10, 14), frame(11, 16), bytes(16)])
    assert (sink.received, sink.out_of_order, sink.corrupt) == (13, 0, 1)


def test_the_source_keeps_at_most_a_window_out():
    c = config.new()
    config.app(c, "source", NumberedSource, {"count": 100, "size": 60, "window": 8})
    config.app(c, "sink", NumberedSink)
    config.link(c, "source.output -> sink.input")
    engine = Engine()
    engine.configure(c)
    source = engine.apps["source"]
    source.sink = engine.apps["sink"]
    source.pull()
    assert source.seq == 8
    source.pull()
    assert source.seq == 8  # nothing came back yet
    engine.breathe()  # the source may send none; the sink counts 8
    assert (source.seq, source.sink.received) == (8, 8)
    engine.breathe()  # now 8 more go, and arrive
    assert (source.seq, source.sink.received) == (16, 16)
    engine.stop()


def test_a_source_of_several_sizes_cycles_through_them_and_the_sink_takes_them():
    sizes = (60, 9000, 1514)
    c = config.new()
    config.app(c, "source", NumberedSource, {"count": 7, "size": list(sizes)})
    config.app(c, "sink", NumberedSink)
    config.link(c, "source.output -> sink.input")
    engine = Engine()
    engine.configure(c)
    link = engine.apps["sink"].input["input"]
    engine.apps["source"].pull()
    got = []
    while not link.empty():
        p = link.receive()
        got.append(packet.to_bytes(p))
        packet.free(p)
    assert got == [cycled(seq, sizes) for seq in range(7)]
    assert [len(data) for data in got] == [60, 9000, 1514, 60, 9000, 1514, 60]
    for data in got:
        link.transmit(packet.from_bytes(data))
    engine.breathe()
    sink = engine.apps["sink"]
    assert (sink.received, sink.out_of_order, sink.corrupt) == (7, 0, 0)
    engine.stop()


@pytest.mark.parametrize("value", [[], [60, 0], [60, True], 10241, [60.0]])
def test_frame_sizes_are_checked(value):
    with pytest.raises(ValueError, match="frame sizes must be integers 1..10240"):
        frame_sizes(value)
