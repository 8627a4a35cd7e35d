"""Hostile packed control rings thrown at device_ctrl.c's packed form
(pd_ctrl_take / pd_ctrl_complete): random descriptors, availability bits,
indirect tables and addresses, from any ring state, between PROT_NONE
guard pages (a byte read or written outside the memory table kills the
test). Every chain taken is either a command (completed with its ack) or
counted by reason and handed back with length 0; the ring stops at the
first slot not available."""

from hypothesis import event, given, settings
from test_packed_device_hostile import REASONS, SIZE, _start, _write_ring, ring_contents

from snabbpy.core.native import ffi, lib


@settings(max_examples=400, deadline=None)
@given(**ring_contents)
def test_hostile_control_rings_are_answered_or_counted(descs, base, flags, noise):
    _write_ring(descs, base, noise)
    q, s = _start(flags, base)
    cmd = ffi.new("struct dr_ctrl_cmd *")
    commands = bad = 0
    for _ in range(4 * SIZE):  # every take consumes a slot: a ring runs dry
        taken = lib.pd_ctrl_take(q, cmd)
        if taken == 0:
            break
        if taken < 0:
            bad += 1
            continue
        assert cmd.ack != ffi.NULL and cmd.slots >= 1
        lib.pd_ctrl_complete(q, cmd, 1)
        commands += 1
    else:
        raise AssertionError("the control ring never ran dry")
    assert q.used_idx == q.last_avail
    assert s.chains == commands + bad == commands + sum(getattr(s, r) for r in REASONS)
    assert lib.pd_ctrl_take(q, cmd) == 0  # stopped at a slot not available
    event("commands answered" if commands else "no command")
