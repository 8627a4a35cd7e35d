"""rss.RSS with ``lossless: true``: a full output holds packets back on the
input instead of dropping them."""

import random

from snabbpy.apps.rss import RSS, flow_hash, output_index
from snabbpy.apps.rss.flows import flow_frame
from tests.helpers import drain, fill, wire


def test_a_full_output_holds_packets_back_and_nothing_is_dropped(no_leaks):
    rng = random.Random(1)
    frames = [flow_frame(64, rng) for _ in range(128)] * 7  # 896 frames
    rss = wire(RSS({"lossless": True}), ["input"], ["out0", "out1"])
    fill(rss.input["input"], frames)
    fill(rss.output["out1"], [b"x"] * 1000)       # out1 has room for 23
    rss.push()
    bound = [output_index(flow_hash(f), 2) for f in frames]
    blocked = [i for i, k in enumerate(bound) if k == 1][23]  # the 24th for out1
    assert rss.input["input"].nreadable() == 896 - blocked  # it waits, with all behind it
    assert rss.output["out1"].full()
    assert drain(rss.output["out0"]) == [f for f, k in zip(frames[:blocked], bound, strict=False)
                                         if k == 0]
    assert rss.output["out0"].stats()["txdrop"] == rss.output["out1"].stats()["txdrop"] == 0
    drain(rss.output["out1"])
    rss.push()
    assert rss.input["input"].nreadable() == 0
    assert drain(rss.output["out1"]) == [f for f, k in zip(frames, bound, strict=True)
                                         if k == 1][23:]
    drain(rss.output["out0"])


def test_by_default_a_full_output_drops_and_counts():
    rss = wire(RSS({"lossless": False}), ["input"], ["out0"])
    fill(rss.output["out0"], [b"x"] * 1023)
    fill(rss.input["input"], [b"y" * 60] * 5)
    rss.push()
    assert rss.input["input"].empty() and rss.output["out0"].stats()["txdrop"] == 5
    drain(rss.output["out0"])
