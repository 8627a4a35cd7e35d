"""The control-command codec both ends use (snabbpy/lib/virtio/net_ctrl.py):
what a driver sends, and what a device answers to good and hostile bytes."""

import struct

import pytest

from snabbpy.lib.virtio.net_ctrl import (
    ERR,
    OK,
    CtrlClass,
    CtrlError,
    MqCommand,
    answer_mq,
    control_queue_index,
    decode,
    encode,
    queue_pairs,
    vq_pairs_set,
)


def test_vq_pairs_set_is_class_mq_command_0_and_a_le16():
    assert vq_pairs_set(3) == bytes((CtrlClass.MQ, MqCommand.VQ_PAIRS_SET)) + b"\x03\x00"
    cmd = decode(vq_pairs_set(3))
    assert (cmd.cls, cmd.command, cmd.data, cmd.name) == (4, 0, b"\x03\x00", "MQ.VQ_PAIRS_SET")
    assert answer_mq(cmd, max_pairs=4, mq_negotiated=True).ack == OK
    assert answer_mq(cmd, max_pairs=4, mq_negotiated=True).pairs == 3
    for bad in (0, 0x8001):
        with pytest.raises(ValueError, match="outside 1..32768"):
            vq_pairs_set(bad)


@pytest.mark.parametrize("data, length, why", [
    (encode(CtrlClass.MQ, 0, struct.pack("<H", 0)), None, "0 pairs"),
    (encode(CtrlClass.MQ, 0, struct.pack("<H", 5)), None, "5 pairs, the device has 1..4"),
    (encode(CtrlClass.MQ, 0, b""), None, "0 data bytes"),
    (encode(CtrlClass.MQ, 0, b"\x02\x00\x00"), None, "3 data bytes"),
    (encode(CtrlClass.MQ, 2, bytes(4)), None, "MQ.HASH_CONFIG: not supported"),
    (encode(CtrlClass.MAC, 1, bytes(6)), None, "MAC.command1: not supported"),
    (encode(200, 7), None, "class200.command7: not supported"),
    (vq_pairs_set(2), 300, "data bytes"),  # the chain was longer than what was kept
])
def test_every_other_command_is_err_with_a_reason(data, length, why):
    answer = answer_mq(decode(data, length), max_pairs=4, mq_negotiated=True)
    assert answer.ack == ERR and answer.pairs is None and why in answer.why


def test_short_commands_and_mq_not_negotiated():
    for short in (b"", b"\x04"):
        with pytest.raises(CtrlError, match="class and command need 2"):
            decode(short)
    answer = answer_mq(decode(vq_pairs_set(1)), max_pairs=4, mq_negotiated=False)
    assert answer.ack == ERR and "not negotiated" in answer.why


def test_control_queue_index_and_queues_values():
    assert control_queue_index(4, mq=True) == 8 and control_queue_index(4, mq=False) == 2
    assert queue_pairs(8) == 8
    for bad in (0, 9, True, 1.5, "2"):
        with pytest.raises(ValueError):
            queue_pairs(bad)
