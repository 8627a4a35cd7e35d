"""A packed ring handed between processes (apps/vhost/handoff_*.py): the
owner takes back the 32-bit ring state a worker stopped the ring at, both
wrap counters with it, through ``Vring.resume_at``."""

import struct

from guarded_memory import GPA, GuardedMemory

from snabbpy.apps.vhost.vring import Vring
from snabbpy.core.link import Link
from snabbpy.core.native import ffi, lib
from snabbpy.lib.vhost_user.payloads import VringAddr
from snabbpy.lib.virtio.constants import Feature, feature_mask

SIZE = 8
MEM = GuardedMemory()
RING, DRIVER, DEVICE = GPA[0], GPA[0] + 0x1000, GPA[0] + 0x1004
PACKED = feature_mask(Feature.VERSION_1, Feature.RING_PACKED)


def packed_vring(base: int) -> Vring:
    v = Vring(1, ffi.new("struct dr_stats *"))
    v.num, v.base = SIZE, base
    v.addr = VringAddr(1, 0, RING, DEVICE, DRIVER)
    v.start(MEM, PACKED)
    return v


def test_the_owner_resumes_where_the_worker_stopped(no_leaks):
    MEM.write(DRIVER, bytes(8))
    for i in range(SIZE):  # nothing available: every slot used in lap 1
        MEM.write(RING + 16 * i, struct.pack("<QIHH", 0, 0, 0,
                                             lib.PK_DESC_F_AVAIL | lib.PK_DESC_F_USED))
    owner = packed_vring(0x8000)
    worker = packed_vring(0x0005)  # slot 5 of the second lap: wrap counter 0
    state = worker.stop()
    assert state == 0x00050005
    owner.resume_at(state)
    assert owner.packed and owner.q.last_avail == owner.q.used_idx == 0x0005
    assert lib.pd_tx(owner.q, Link("out").c, 10) == 0  # slot 5 of lap 2: not yet available
    assert owner.stop() == state
