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
