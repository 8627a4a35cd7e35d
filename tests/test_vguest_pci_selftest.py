"""The PCI selftest's pieces that need no device: its options (the frames
it sends and how it counts them: tests/test_testing_frames.py)."""

import pytest

from snabbpy.apps.vguest.selftest import pci as pci_selftest
from snabbpy.core.config import ConfigError

pytestmark = pytest.mark.usefixtures("no_leaks")


def test_options_and_their_defaults():
    args = pci_selftest.parse(["--pci", "0000:00:05.0", "--expect-rx", "5"])
    assert (args.pci, args.pci_mode, args.packets, args.expect_rx, args.size) == (
        "0000:00:05.0", "auto", 1000, 5, (60,))
    assert (args.rx_buffer_size, args.event_idx) == (None, False)


def test_sizes_to_cycle_through_and_the_summary_of_them():
    args = pci_selftest.parse(["--pci", "0000:00:05.0", "--size", "60,1514,9000",
                               "--rx-buffer-size", "2048", "--event-idx"])
    assert (args.size, args.rx_buffer_size, args.event_idx) == ((60, 1514, 9000), 2048, True)
    assert pci_selftest.size_text(args.size) == "60..9000 bytes"
    assert pci_selftest.size_text((60,)) == "60 bytes"


@pytest.mark.parametrize("argv", [["--pci", "0000:00:05.0", "--size", "17"],
                                  ["--pci", "0000:00:05.0", "--size", "60,10241"],
                                  ["--pci", "0000:00:05.0", "--size", "60,,9000"],
                                  ["--pci", "0000:00:05.0", "--expect-rx", "-1"],
                                  ["--pci", "0000:00:05.0", "--pci-mode", "virtio"]])
def test_bad_options_are_config_errors(argv):
    with pytest.raises(ConfigError, match="selftest apps.vguest"):
        pci_selftest.parse(argv)
