"""vhost-user protocol numbers (QEMU docs/interop/vhost-user.rst).

The spec's older names used "master"/"slave"; this package says
"frontend" (the driver side: QEMU, DPDK virtio_user, vguest) and "backend"
(the device side: DPDK net_vhost, snabbpy's VhostUser).
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

HEADER_SIZE = 12  # request u32, flags u32, size u32
VERSION = 0x1
# SET_MEM_TABLE carries at most this many regions (and fds); more regions need
# the CONFIGURE_MEM_SLOTS feature and ADD_MEM_REG, one region per message.
MEMORY_BASELINE_NREGIONS = 8
MAX_CONFIG_SIZE = 256  # bytes of device config space in GET/SET_CONFIG
MAX_FDS = MEMORY_BASELINE_NREGIONS  # the most fds any single message carries

VRING_INDEX_MASK = 0xFF  # SET_VRING_KICK/CALL/ERR u64: bits 0-7 = ring index
VRING_NOFD_MASK = 0x100  # bit 8: no fd attached (poll instead)
VRING_F_LOG = 0x1  # SET_VRING_ADDR flags: log used-ring writes
GET_CONFIG_ERROR_SIZE = 0  # a GET_CONFIG reply with no payload signals failure


class HeaderFlag(IntFlag):
    """Bits of the header's ``flags`` field besides the 2-bit version."""

    VERSION_MASK = 0x3
    REPLY = 0x4
    NEED_REPLY = 0x8


class Request(IntEnum):
    """Requests the frontend sends to the backend (the main socket)."""

    GET_FEATURES = 1
    SET_FEATURES = 2
    SET_OWNER = 3
    RESET_OWNER = 4
    SET_MEM_TABLE = 5
    SET_LOG_BASE = 6
    SET_LOG_FD = 7
    SET_VRING_NUM = 8
    SET_VRING_ADDR = 9
    SET_VRING_BASE = 10
    GET_VRING_BASE = 11
    SET_VRING_KICK = 12
    SET_VRING_CALL = 13
    SET_VRING_ERR = 14
    GET_PROTOCOL_FEATURES = 15
    SET_PROTOCOL_FEATURES = 16
    GET_QUEUE_NUM = 17
    SET_VRING_ENABLE = 18
    SEND_RARP = 19
    NET_SET_MTU = 20
    SET_BACKEND_REQ_FD = 21  # was SET_SLAVE_REQ_FD
    IOTLB_MSG = 22
    SET_VRING_ENDIAN = 23
    GET_CONFIG = 24
    SET_CONFIG = 25
    CREATE_CRYPTO_SESSION = 26
    CLOSE_CRYPTO_SESSION = 27
    POSTCOPY_ADVISE = 28
    POSTCOPY_LISTEN = 29
    POSTCOPY_END = 30
    GET_INFLIGHT_FD = 31
    SET_INFLIGHT_FD = 32
    GPU_SET_SOCKET = 33
    RESET_DEVICE = 34
    VRING_KICK = 35
    GET_MAX_MEM_SLOTS = 36
    ADD_MEM_REG = 37
    REM_MEM_REG = 38
    SET_STATUS = 39
    GET_STATUS = 40


class ProtocolFeature(IntEnum):
    """Protocol feature bit numbers (GET/SET_PROTOCOL_FEATURES)."""

    MQ = 0
    LOG_SHMFD = 1
    RARP = 2
    REPLY_ACK = 3
    MTU = 4
    BACKEND_REQ = 5  # was SLAVE_REQ
    CROSS_ENDIAN = 6
    CRYPTO_SESSION = 7
    PAGEFAULT = 8
    CONFIG = 9
    BACKEND_SEND_FD = 10  # was SLAVE_SEND_FD
    HOST_NOTIFIER = 11
    INFLIGHT_SHMFD = 12
    RESET_DEVICE = 13
    INBAND_NOTIFICATIONS = 14
    CONFIGURE_MEM_SLOTS = 15
    STATUS = 16
    XEN_MMAP = 17
    SHARED_OBJECT = 18
    DEVICE_STATE = 19


def protocol_feature_names(mask: int) -> list[str]:
    """Name every protocol feature bit set in ``mask`` (``bit<N>`` if unknown)."""
    names = []
    for bit in range(mask.bit_length()):
        if mask >> bit & 1:
            try:
                names.append(ProtocolFeature(bit).name)
            except ValueError:
                names.append(f"bit{bit}")
    return names
