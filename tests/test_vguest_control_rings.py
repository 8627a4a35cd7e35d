"""vguest's control queue on a packed ring (apps/vguest/control_rings.py)
against the device end VhostUser runs (device_ctrl.c's pd_ctrl_take and
pd_ctrl_complete), in one process: commands across several laps of the
ring, the device's ack returned, and a device that answers nonsense (another
buffer id, no length, an ack neither OK nor ERR, nothing) refused in one
line."""

from __future__ import annotations

import struct

import pytest
from packed_pair import device_memory

from snabbpy.apps.vguest.control_queue import ControlQueueError, DriverControlQueue
from snabbpy.core.native import ffi, lib
from snabbpy.lib.virtio.net_ctrl import ERR, OK, vq_pairs_set
from snabbpy.testing.vguest_model import ModelDevice

CTRL = 4  # the control queue of a 2-pair device


class PackedControlModel(ModelDevice):
    """A 2-pair model device whose control queue is a packed ring served by
    the device side's C: each command gets ``ack``; ``tamper(slot)``, if
    given, then rewrites the used descriptor at host address ``slot``."""

    def __init__(self, ack=OK, tamper=None) -> None:
        super().__init__(max_pairs=2, max_size=16)
        self.ack, self.tamper = ack, tamper
        self.q, self.stats = ffi.new("struct pd_queue *"), ffi.new("struct dr_stats *")
        self.cmd = ffi.new("struct dr_ctrl_cmd *")

    def _control(self) -> None:
        ring = self.queues[CTRL]
        if not self.q.ready:  # the ring's memory exists now
            self.mem = device_memory()
            assert lib.pd_queue_start(self.q, self.mem, self.stats, ring.size, ring.desc,
                                      ring.avail, ring.used, 0x80008000, 0) == 0
        while True:
            slot = ring.desc + 16 * (self.q.used_idx & 0x7FFF)
            taken = lib.pd_ctrl_take(self.q, self.cmd)
            if taken == 0:
                return
            assert taken == 1, "the driver's chain was refused"
            self.commands.append(bytes(ffi.buffer(self.cmd.data, self.cmd.len)))
            lib.pd_ctrl_complete(self.q, self.cmd, self.ack)
            if self.tamper is not None:
                self.tamper(slot)


def write(addr: int, data: bytes) -> None:
    ffi.memmove(ffi.cast("uint8_t *", addr), data, len(data))


def control_queue(device: ModelDevice) -> DriverControlQueue:
    return DriverControlQueue(device, CTRL, packed=True)


def test_commands_go_round_the_ring_and_bring_back_the_ack():
    device = PackedControlModel()
    queue = control_queue(device)
    for pairs in [1, 2] * 12:  # 48 slots of 16: three laps, wrap counters flipping
        assert queue.command(vq_pairs_set(pairs), timeout=1) == OK
    assert device.commands == [vq_pairs_set(p) for p in [1, 2] * 12]
    assert device.stats.chains == 24 and device.stats.bad_chain == 0
    device.ack = ERR
    assert queue.command(vq_pairs_set(2), timeout=1) == ERR


@pytest.mark.parametrize("tamper, message", [
    (lambda slot: write(slot + 12, struct.pack("<H", 7)), r"chain 7, length 1"),
    (lambda slot: write(slot + 14, struct.pack("<H", 0x8080)), r"chain 0, length 0"),
    (lambda slot: write(slot + 8, struct.pack("<I", 0)), r"chain 0, length 0"),
])
def test_an_answer_that_makes_no_sense_is_refused(tamper, message):
    queue = control_queue(PackedControlModel(tamper=tamper))
    with pytest.raises(ControlQueueError, match=f"makes no sense .{message}"):
        queue.command(vq_pairs_set(2), timeout=1)


def test_an_ack_neither_ok_nor_err_is_refused():
    queue = control_queue(PackedControlModel(ack=3))
    with pytest.raises(ControlQueueError, match="ack 3"):
        queue.command(vq_pairs_set(2), timeout=1)


def test_a_device_that_never_answers_times_out():
    device = PackedControlModel()
    device._control = lambda: None
    with pytest.raises(ControlQueueError, match="no answer to a control command in 0.05s"):
        control_queue(device).command(vq_pairs_set(2), timeout=0.05)
