"""The PCI selftest's pieces that need no device: options, the frames it
sends and expects, and how it counts what arrives."""

import pytest

from snabbpy.apps.vguest.selftest import pci as pci_selftest
from snabbpy.apps.vguest.selftest.loopback import frame
from snabbpy.apps.vguest.selftest.pci import Frames, FrameSource, OrderedSink
from snabbpy.core import config, packet
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine

pytestmark = pytest.mark.usefixtures("no_leaks")


def test_options_and_their_defaults():
    args = pci_selftest.parse(["--pci", "0000:00:05.0", "--expect-rx", "5"])
    assert (args.pci, args.pci_mode, args.packets, args.expect_rx, args.size) == (
        "0000:00:05.0", "auto", 1000, 5, 60)


@pytest.mark.parametrize("argv", [["--pci", "0000:00:05.0", "--size", "17"],
                                  ["--pci", "0000:00:05.0", "--expect-rx", "-1"],
                                  ["--pci", "0000:00:05.0", "--pci-mode", "virtio"]])
def test_bad_options_are_config_errors(argv):
    with pytest.raises(ConfigError, match="selftest apps.vguest"):
        pci_selftest.parse(argv)


@pytest.mark.parametrize("size", [18, 60, 269, 1514])
def test_cached_frames_are_the_loopback_frames(size):
    frames = Frames(size)
    assert all(frames.get(seq) == frame(seq, size) for seq in [*range(600), 2**32 + 7])


def test_the_sink_tells_intact_corrupt_and_reordered_frames_apart():
    c = config.new()
    config.app(c, "source", FrameSource, {"count": 10, "size": 60})
    config.app(c, "sink", OrderedSink)
    config.link(c, "source.output -> sink.input")
    engine = Engine()
    engine.configure(c)
    engine.breathe()
    link = engine.apps["sink"].input["input"]
    for data in (frame(11, 60), frame(10, 60)[:-1] + b"\0", b"short"):
        link.transmit(packet.from_bytes(data))
    engine.breathe()
    sink = engine.apps["sink"]
    assert (sink.received, sink.out_of_order, sink.corrupt) == (13, 1, 2)
    engine.stop()
