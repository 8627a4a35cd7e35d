"""The basic apps, each driven directly with links made by the test."""

import pytest
from helpers import drain, fill, wire

from snabbpy.apps.basic import Join, Repeater, Sample, Sink, Source, Split, Tee, Truncate
from snabbpy.core.config import ConfigError
from snabbpy.core.link import MAX_PACKETS

pytestmark = pytest.mark.usefixtures("no_leaks")


def test_source_fills_every_output_with_packets_of_its_size():
    src = wire(Source({"size": 64, "fill": 0xAB}), outputs=["a", "b"])
    src.pull()
    for o in src.output.values():
        payloads = drain(o)
        assert len(payloads) == MAX_PACKETS
        assert set(payloads) == {b"\xab" * 64}
    src.stop()


def test_source_rejects_impossible_sizes():
    with pytest.raises(ConfigError, match="size 20000 is outside"):
        Source({"size": 20000, "fill": 0})


def test_sink_frees_everything_it_receives():
    sink = wire(Sink({}), inputs=["a", "b"])
    fill(sink.input["a"], [b"x"] * 5)
    fill(sink.input["b"], [b"y"] * 7)
    sink.push()
    assert all(i.empty() for i in sink.input.values())
    assert sink.input["b"].stats()["rxpackets"] == 7


def test_join_merges_inputs_in_port_order():
    join = wire(Join({}), inputs=["a", "b"], outputs=["output"])
    fill(join.input["a"], [b"a1", b"a2"])
    fill(join.input["b"], [b"b1"])
    join.push()
    assert drain(join.output["output"]) == [b"a1", b"a2", b"b1"]


def test_split_deals_round_robin():
    split = wire(Split({}), inputs=["input"], outputs=["x", "y"])
    fill(split.input["input"], [b"1", b"2", b"3", b"4", b"5"])
    split.push()
    assert drain(split.output["x"]) == [b"1", b"3", b"5"]
    assert drain(split.output["y"]) == [b"2", b"4"]


def test_split_leaves_packets_waiting_when_every_output_is_full():
    split = wire(Split({}), inputs=["input"], outputs=["x"])
    fill(split.output["x"], [b""] * MAX_PACKETS)
    fill(split.input["input"], [b"late"])
    split.push()
    assert split.input["input"].nreadable() == 1
    assert split.output["x"].stats()["txdrop"] == 0
    drain(split.output["x"])
    drain(split.input["input"])


def test_tee_sends_a_copy_to_every_output():
    tee = wire(Tee({}), inputs=["input"], outputs=["a", "b", "c"])
    fill(tee.input["input"], [b"p1", b"p2"])
    tee.push()
    for o in tee.output.values():
        assert drain(o) == [b"p1", b"p2"]


def test_tee_takes_only_what_every_output_has_room_for():
    tee = wire(Tee({}), inputs=["input"], outputs=["a", "b"])
    fill(tee.output["b"], [b""] * (MAX_PACKETS - 1))
    fill(tee.input["input"], [b"1", b"2", b"3"])
    tee.push()
    assert drain(tee.output["a"]) == [b"1"]
    assert tee.input["input"].nreadable() == 2
    drain(tee.output["b"])
    drain(tee.input["input"])


def test_repeater_plays_back_its_input_in_order():
    rep = wire(Repeater({}), inputs=["input"], outputs=["output"])
    fill(rep.input["input"], [b"a", b"b", b"c"])
    rep.push()
    out = drain(rep.output["output"])
    assert out[:7] == [b"a", b"b", b"c", b"a", b"b", b"c", b"a"]
    assert len(out) == MAX_PACKETS
    rep.stop()


def test_truncate_cuts_and_pads():
    t = wire(Truncate({"size": 4}), inputs=["input"], outputs=["output"])
    fill(t.input["input"], [b"abcdefgh", b"ab"])
    t.push()
    assert drain(t.output["output"]) == [b"abcd", b"ab\0\0"]


def test_sample_passes_one_in_n():
    s = wire(Sample({"every": 3}), inputs=["input"], outputs=["output"])
    fill(s.input["input"], [bytes([i]) for i in range(1, 10)])
    s.push()
    assert drain(s.output["output"]) == [b"\3", b"\6", b"\x09"]


def test_sample_rejects_zero():
    with pytest.raises(ConfigError, match="at least 1"):
        Sample({"every": 0})


def test_selftest_passes():
    from snabbpy.apps import basic

    basic.selftest()
