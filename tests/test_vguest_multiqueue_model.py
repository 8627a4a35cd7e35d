"""vguest's multiqueue setup against the in-process device model (no
socket): the rings of every pair, the control queue at index 2 * max pairs,
VQ_PAIRS_SET sent after DRIVER_OK, and each way a device can refuse or
answer nonsense, reported as a one-line DeviceError."""

import pytest

from snabbpy.apps.vguest.device import DeviceError, VirtioNetDevice
from snabbpy.core import packet
from snabbpy.core.link import Link
from snabbpy.lib.virtio import DeviceStatus, Feature, feature_mask
from snabbpy.lib.virtio.net_ctrl import ERR, vq_pairs_set
from snabbpy.testing.vguest_model import DEFAULT_FEATURES, ModelDevice

MQ = DEFAULT_FEATURES | feature_mask(Feature.NET_MQ, Feature.NET_CTRL_VQ)


def open_mq(pairs=2, features=MQ, **model):
    device = ModelDevice(features=features, max_size=16, **model)
    driver = VirtioNetDevice(device, queue_size=16, queue_pairs=pairs)
    driver.ctrl_timeout = 0.05  # the model answers at once or never
    return device, driver


def test_two_pairs_of_four_are_set_up_and_set_through_the_control_queue(no_leaks):
    device, driver = open_mq(max_pairs=4)
    driver.open()
    assert len(driver.pairs) == 2
    assert [q.enabled for q in device.queues] == [True] * 4 + [False] * 4 + [True]
    assert device.queues[0].pending() == device.queues[2].pending() == 16  # both refilled
    assert device.commands == [vq_pairs_set(2)]
    assert device.status & DeviceStatus.DRIVER_OK
    link = Link("in")
    link.transmit(packet.from_bytes(bytes(60)))
    driver.pairs[1][1].transmit(link.c)
    assert device.queues[3].pending() == 1 and device.queues[1].pending() == 0
    driver.close()


def test_one_pair_needs_no_control_queue(no_leaks):
    device, driver = open_mq(pairs=1, max_pairs=2)
    driver.open()
    assert device.commands == [] and not driver.has(Feature.NET_MQ)
    driver.close()


@pytest.mark.parametrize("setup, message", [
    ({"features": DEFAULT_FEATURES}, "does not offer MQ and a control queue"),
    ({"max_pairs": 1, "features": MQ}, "the device has 1"),
    ({"max_pairs": 2, "answer": lambda c: (ERR, 1, 0)}, "refused 2 queue pairs"),
    ({"max_pairs": 2, "answer": lambda c: None}, "no answer to a control command"),
    ({"max_pairs": 2, "answer": lambda c: (7, 1, 0)}, "makes no sense"),
    ({"max_pairs": 2, "answer": lambda c: (0, 1, 3)}, "makes no sense"),
    ({"max_pairs": 2, "answer": lambda c: (0, 0, 0)}, "makes no sense"),
])
def test_a_device_that_refuses_or_lies_fails_the_open(no_leaks, setup, message):
    device, driver = open_mq(**setup)
    with pytest.raises(DeviceError, match=message):
        driver.open()
    assert device.status & DeviceStatus.FAILED
    driver.close()
