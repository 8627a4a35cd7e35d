"""The vhost-user protocol as sans-I/O code: bytes and fds in, typed
messages out; requests and replies out as bytes.

- ``Backend``: the device side (snabbpy's VhostUser app) decodes requests and
  builds replies/acks;
- ``Frontend``: the driver side (vguest's vhost-user transport) builds
  requests and matches replies;
- ``MessageDecoder``: the incremental decoder both use;
- ``socket_io``: ``send_message`` / ``recv_chunk``, the message I/O, kept apart;
- ``sockets``: both socket ends, ``Listener`` (with the stale-socket rule)
  and ``Connector`` (trying again while the server is not there).

Spec: QEMU ``docs/interop/vhost-user.rst``.
"""

from .backend import Backend
from .constants import (
    HEADER_SIZE,
    MEMORY_BASELINE_NREGIONS,
    VRING_F_LOG,
    HeaderFlag,
    ProtocolFeature,
    Request,
    protocol_feature_names,
)
from .decoder import MessageDecoder
from .errors import BACKEND, FRONTEND, VhostUserProtocolError
from .frontend import Frontend
from .messages import REQUESTS, UNSUPPORTED, Message
from .payloads import DeviceConfig, MemoryRegion, MemoryTable, VringAddr, VringFile, VringState

__all__ = [
    "Backend", "Frontend", "MessageDecoder", "Message", "VhostUserProtocolError",
    "FRONTEND", "BACKEND", "REQUESTS", "UNSUPPORTED",
    "HEADER_SIZE", "MEMORY_BASELINE_NREGIONS", "VRING_F_LOG",
    "HeaderFlag", "ProtocolFeature", "Request", "protocol_feature_names",
    "DeviceConfig", "MemoryRegion", "MemoryTable", "VringAddr", "VringFile", "VringState",
]
