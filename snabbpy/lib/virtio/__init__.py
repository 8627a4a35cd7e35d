"""Virtio protocol definitions with no I/O: constants, split-ring layout,
the virtio-net header.  Used by both the driver (vguest) and the device
(vhost) side.  ``vring.h`` beside this file declares the same ring structs
for C and for cffi's ``cdef``.
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
    ("device_ring.h", "device_ring_memory.c"),
    (None, "device_ring.c"),
    (None, "device_ring_chain.c"),
    (None, "device_ring_tx.c"),
    (None, "device_ring_rx.c"),
]
