"""rss.RSS with ``lossless: true``: a full output holds packets back on the
input instead of dropping them."""

import random

from snabbpy.apps.rss import RSS
from snabbpy.apps.rss.flows import flow_frame
from tests.helpers import drain, fill, wire


def test_a_full_output_holds_packets_back_and_nothing_is_dropped(no_leaks):
    rng = random.Random(1)
    frames = [flow_frame(64, rng) for _ in range(128)]
    rss = wire(RSS({"lossless": True}), ["input"], ["out0", "out1"])
    fill(rss.input["input"], frames * 7)          # 896 frames
    fill(rss.output["out1"], [b"x"] * 1000)       # out1 has room for 23
    rss.push()
    taken = 896 - rss.input["input"].nreadable()
    assert taken == 23
    assert rss.output["out0"].stats()["txdrop"] == rss.output["out1"].stats()["txdrop"] == 0
    for name in ("out0", "out1"):
        drain(rss.output[name])
    rss.push()
    assert rss.input["input"].nreadable() == 0
    for name in ("out0", "out1"):
        drain(rss.output[name])


def test_by_default_a_full_output_drops_and_counts():
    rss = wire(RSS({"lossless": False}), ["input"], ["out0"])
    fill(rss.output["out0"], [b"x"] * 1023)
    fill(rss.input["input"], [b"y" * 60] * 5)
    rss.push()
    assert rss.input["input"].empty() and rss.output["out0"].stats()["txdrop"] == 5
    drain(rss.output["out0"])
