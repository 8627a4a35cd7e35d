"""Virtio with no I/O: constants, split-ring layout, the virtio-net header,
and both ends of a split ring over memory they are given.

- the driver end (vguest): ``virtq.py`` over ``virtq.h``/``virtq.c``, with
  ``checksum.c`` for the CSUM offload;
- the device end (vhost): ``device_ring.h`` over ``device_ring_memory.c``
  (address translation), ``device_ring.c`` (ring entries, queue life),
  ``device_ring_chain.c`` (chain walking), ``device_ring_tx.c`` and
  ``device_ring_rx.c`` (the two directions), ``device_ring_offload.c``
  over ``offload.h``/``offload.c`` (guest checksum and TSO offloads);
- packed rings (``packed_ring.h``): the driver end ``packed_virtq.py`` over
  ``packed_driver.c``, the device end ``packed_device.c`` (it reuses the
  split device's memory, TX copy, offloads and RX scatter).

``vring.h`` declares the ring structs for C and for cffi's ``cdef``. The
names exported here import nothing native; ``virtq`` needs the built core.
"""

from .constants import (
    AvailFlag,
    DescFlag,
    DeviceStatus,
    Feature,
    NetHdrFlag,
    NetHdrGso,
    NetStatus,
    UsedFlag,
    feature_mask,
    feature_names,
    has_feature,
)
from .net_header import NetHeader, header_size
from .ring import RingLayout, check_queue_size, legacy_layout, modern_layout

__all__ = [
    "AvailFlag", "DescFlag", "DeviceStatus", "Feature", "NetHdrFlag", "NetHdrGso",
    "NetStatus", "UsedFlag", "feature_mask", "feature_names", "has_feature",
    "NetHeader", "header_size",
    "RingLayout", "check_queue_size", "legacy_layout", "modern_layout",
]

#: This package's C parts for snabbpy._native: (header, source), either may be
#: None, relative to this directory, in the order C must see them.
#: native_build.py reads this list without importing the package.
C_PARTS = [
    ("vring.h", None),
    ("packed_ring.h", "packed_ring.c"),
    # the driver end (vguest): split, then packed (which uses virtq.c's
    # TX header and merge)
    ("virtq.h", "virtq.c"),
    ("checksum.h", "checksum.c"),
    ("packed_driver.h", "packed_driver.c"),
    # the device end (vhost): one header, the code split by concern
    ("offload.h", "offload.c"),
    ("device_ring.h", "device_ring_memory.c"),
    (None, "device_ring.c"),
    (None, "device_ring_chain.c"),
    (None, "device_ring_offload.c"),
    (None, "device_ring_tx.c"),
    (None, "device_ring_rx.c"),
    # the packed ring's device end, over device_ring*.c's functions
    ("packed_device.h", "packed_device.c"),
    ("device_ctrl.h", "device_ctrl.c"),
]
