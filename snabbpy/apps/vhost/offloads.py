"""Guest offloads of a VhostUser device: which virtio features the
``checksum_offload`` and ``tso`` keys offer, and the ring flags that tell
the C TX path (``lib/virtio/offload.c``) what it may accept.

Nothing is offered unless configured, so a device without the keys is the
plain device it always was: a header asking for a checksum or GSO is then
refused (``bad_header``). Offloads apply to frames FROM the guest; towards
the guest nothing is offered (``GUEST_CSUM`` would let us mark packets
DATA_VALID, but packets from the graph carry checksums nobody checked, and
checking them here costs what the guest spends checking them itself).
"""

from __future__ import annotations

from snabbpy.core.config import ConfigError
from snabbpy.core.native import lib
from snabbpy.lib.virtio.constants import Feature, feature_mask, has_feature

#: Offered by ``checksum_offload: true``.
CSUM_FEATURES = feature_mask(Feature.NET_CSUM)
#: Offered by ``tso: true`` (which needs ``checksum_offload``, as the spec's
#: HOST_TSO4/TSO6 depend on CSUM).
TSO_FEATURES = feature_mask(Feature.NET_HOST_TSO4, Feature.NET_HOST_TSO6,
                            Feature.NET_HOST_ECN)

#: (feature bit, DR_F_* ring flag) of each offload.
_FLAGS = ((Feature.NET_CSUM, lib.DR_F_CSUM), (Feature.NET_HOST_TSO4, lib.DR_F_TSO4),
          (Feature.NET_HOST_TSO6, lib.DR_F_TSO6), (Feature.NET_HOST_ECN, lib.DR_F_ECN))


def offload_offer(conf: dict) -> int:
    """The offload features ``conf`` asks to offer (0 by default);
    ConfigError for ``tso`` without ``checksum_offload``."""
    csum, tso = conf.get("checksum_offload", False), conf.get("tso", False)
    if tso and not csum:
        raise ConfigError("tso: needs checksum_offload: true (virtio's HOST_TSO4/TSO6 "
                          "depend on CSUM)")
    return (CSUM_FEATURES if csum else 0) | (TSO_FEATURES if tso else 0)


def offload_flags(features: int) -> int:
    """The ``DR_F_*`` offload flags for negotiated ``features``."""
    return sum(flag for bit, flag in _FLAGS if has_feature(features, bit))
