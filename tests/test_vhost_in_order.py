"""VIRTIO_F_IN_ORDER in VhostUser: offered unless ``in_order: false``;
negotiated on a packed ring it sets PD_F_IN_ORDER on the rings, and the
guest's transmitted packets come back as one used descriptor a batch; a
driver may take it on split rings too, where every chain still gets its
used entry, in ring order (the split device uses buffers in the order
they were made available: see the README)."""

from __future__ import annotations

import pytest
from helpers import vhost_and_frontend, vhost_app

from snabbpy.apps.vhost.device import DeviceError, VhostDevice
from snabbpy.core import packet
from snabbpy.core.native import ffi, lib
from snabbpy.lib.vhost_user import Message, Request
from snabbpy.lib.virtio.constants import Feature
from snabbpy.testing.fake_frontend import WANTED

IN_ORDER = 1 << Feature.IN_ORDER


def test_in_order_is_offered_unless_configured_off(tmp_path):
    on = vhost_app(tmp_path, socket_path=str(tmp_path / "a"))
    off = vhost_app(tmp_path, socket_path=str(tmp_path / "b"), in_order=False)
    assert on.device.offered & IN_ORDER and not off.device.offered & IN_ORDER
    on.stop()
    off.stop()


def test_a_driver_cannot_set_in_order_when_it_is_not_offered(tmp_path):
    app = vhost_app(tmp_path, in_order=False)
    d = VhostDevice(app.device.offered, (ffi.new("struct dr_stats *"),
                                         ffi.new("struct dr_stats *")))
    with pytest.raises(DeviceError, match="not offered: IN_ORDER"):
        d.handle(Message(Request.SET_FEATURES, 0, IN_ORDER | 1 << Feature.VERSION_1))
    app.stop()


def _send(app, fe, n: int) -> list[bytes]:
    """The guest posts n frames on its TX ring; the app takes them."""
    ids = [fe.rings[1].post_tx(bytes([i + 1]) * 60) for i in range(n)]
    app.pull()
    got = []
    for p in app.output["output"].receive_batch():
        got.append(packet.to_bytes(p))
        packet.free(p)
    assert got == [bytes([i + 1]) * 60 for i in range(n)]
    return ids


@pytest.mark.parametrize("in_order", [True, False])
def test_on_a_packed_ring_a_batch_is_one_used_descriptor(tmp_path, in_order):
    """Five frames from the guest: with IN_ORDER one used descriptor (at
    the first slot, the fifth frame's id: a driver that does not know
    in-order would see only it); without, five."""
    with vhost_and_frontend(tmp_path, frontend_packed=True, in_order=in_order) as (app, fe):
        fe.connect(wanted=WANTED | IN_ORDER)
        assert app.device.tx.packed
        assert bool(app.device.features & IN_ORDER) == in_order
        assert bool(app.device.tx.q.flags & lib.PD_F_IN_ORDER) == in_order
        assert ("IN_ORDER" in app.report()) == in_order
        ids = _send(app, fe, 5)
        used = fe.rings[1].take_used()
        assert used == ([(ids[-1], 0)] if in_order else [(i, 0) for i in ids])
        assert app.stats["txq_packets"] == 5 and app.stats["txq_chains"] == 5


def test_on_a_split_ring_in_order_keeps_a_used_entry_per_chain(tmp_path):
    with vhost_and_frontend(tmp_path) as (app, fe):
        fe.connect(wanted=WANTED | IN_ORDER)
        assert app.device.features & IN_ORDER and not app.device.tx.packed
        ids = _send(app, fe, 5)
        assert fe.rings[1].take_used() == [(i, 0) for i in ids]
