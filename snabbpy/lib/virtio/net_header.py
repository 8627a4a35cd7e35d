"""The virtio-net packet header (``struct virtio_net_hdr``) that precedes
every packet on a virtio-net queue.

Its size depends on the negotiated features: 12 bytes (with ``num_buffers``)
when ``NET_MRG_RXBUF`` or ``VERSION_1`` is negotiated, 10 bytes otherwise.
Fields are little-endian (virtio 1.x; legacy devices use guest-native order,
which is little-endian on every platform snabbpy runs on).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .constants import Feature, has_feature

_HDR = struct.Struct("<BBHHHH")
_MRG = struct.Struct("<BBHHHHH")

LEGACY_SIZE = _HDR.size  # 10
MRG_RXBUF_SIZE = _MRG.size  # 12


def header_size(features: int) -> int:
    """Bytes of the virtio-net header for the negotiated ``features`` mask."""
    if has_feature(features, Feature.NET_MRG_RXBUF) or has_feature(features, Feature.VERSION_1):
        return MRG_RXBUF_SIZE
    return LEGACY_SIZE


@dataclass(frozen=True)
class NetHeader:
    """A decoded virtio-net header.  All-zero (the default) means "plain packet"."""

    flags: int = 0
    gso_type: int = 0
    hdr_len: int = 0
    gso_size: int = 0
    csum_start: int = 0
    csum_offset: int = 0
    num_buffers: int = 0  # only carried by the 12-byte header

    def pack(self, size: int = MRG_RXBUF_SIZE) -> bytes:
        """Encode as a header of ``size`` bytes (10 or 12)."""
        fields = (self.flags, self.gso_type, self.hdr_len, self.gso_size,
                  self.csum_start, self.csum_offset)
        if size == MRG_RXBUF_SIZE:
            return _MRG.pack(*fields, self.num_buffers)
        if size == LEGACY_SIZE:
            if self.num_buffers:
                raise ValueError("num_buffers needs the 12-byte header")
            return _HDR.pack(*fields)
        raise ValueError(f"virtio-net header size must be 10 or 12, not {size}")

    @classmethod
    def unpack(cls, data: bytes | memoryview, size: int = MRG_RXBUF_SIZE) -> NetHeader:
        """Decode the first ``size`` bytes (10 or 12) of ``data``."""
        if size not in (LEGACY_SIZE, MRG_RXBUF_SIZE):
            raise ValueError(f"virtio-net header size must be 10 or 12, not {size}")
        if len(data) < size:
            raise ValueError(f"virtio-net header needs {size} bytes, got {len(data)}")
        if size == LEGACY_SIZE:
            return cls(*_HDR.unpack_from(data))
        return cls(*_MRG.unpack_from(data))
