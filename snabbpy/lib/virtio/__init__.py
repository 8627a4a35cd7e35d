"""Virtio with no I/O: constants, split-ring layout, the virtio-net header,
and both ends of a split ring over memory they are given.

- the driver end (vguest): ``virtq.py`` over ``virtq.h``/``virtq.c``, with
  ``checksum.c`` for the CSUM offload;
- the device end (vhost): ``device_ring.h`` over ``device_ring_memory.c``
  (address translation), ``device_ring.c`` (ring entries, queue life),
  ``device_ring_chain.c`` (chain walking), ``device_ring_tx.c`` and
  ``device_ring_rx.c`` (the two directions), ``device_ring_offload.c``
  over ``offload.h``/``offload.c`` (guest checksum and TSO offloads).

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
    # the driver end (vguest)
    ("virtq.h", "virtq.c"),
    ("checksum.h", "checksum.c"),
    # the device end (vhost): one header, the code split by concern
    ("offload.h", "offload.c"),
    ("device_ring.h", "device_ring_memory.c"),
    (None, "device_ring.c"),
    (None, "device_ring_chain.c"),
    (None, "device_ring_offload.c"),
    (None, "device_ring_tx.c"),
    (None, "device_ring_rx.c"),
    ("device_ctrl.h", "device_ctrl.c"),
]
