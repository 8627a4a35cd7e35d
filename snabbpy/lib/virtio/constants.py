"""Virtio constants shared by the driver (vguest) and the device (vhost).

Feature bits are *bit numbers*, as the virtio 1.x specification lists them;
``feature_mask`` turns bit numbers into a mask and ``feature_names`` turns a
mask back into names for logs and error messages.  Flag fields that live in
memory (descriptor flags, ring flags, header flags, status) are ``IntFlag``
values you can OR together.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class Feature(IntEnum):
    """Feature bit numbers: virtio-net device bits, then transport bits."""

    # virtio-net device features (virtio 1.x section 5.1.3)
    NET_CSUM = 0
    NET_GUEST_CSUM = 1
    NET_CTRL_GUEST_OFFLOADS = 2
    NET_MTU = 3
    NET_MAC = 5
    NET_GSO = 6  # legacy only: "any GSO type"; DPDK's net_vhost still offers it
    NET_GUEST_TSO4 = 7
    NET_GUEST_TSO6 = 8
    NET_GUEST_ECN = 9
    NET_GUEST_UFO = 10
    NET_HOST_TSO4 = 11
    NET_HOST_TSO6 = 12
    NET_HOST_ECN = 13
    NET_HOST_UFO = 14
    NET_MRG_RXBUF = 15
    NET_STATUS = 16
    NET_CTRL_VQ = 17
    NET_CTRL_RX = 18
    NET_CTRL_VLAN = 19
    NET_CTRL_RX_EXTRA = 20
    NET_GUEST_ANNOUNCE = 21
    NET_MQ = 22
    NET_CTRL_MAC_ADDR = 23
    # transport / ring features (virtio 1.x section 6)
    NOTIFY_ON_EMPTY = 24
    # vhost (not virtio): the device can log dirty pages for live migration
    VHOST_LOG_ALL = 26
    ANY_LAYOUT = 27
    RING_INDIRECT_DESC = 28
    RING_EVENT_IDX = 29
    # Bit 30 is "UNUSED" in virtio; vhost-user reuses it to announce
    # GET/SET_PROTOCOL_FEATURES support.  Never offered to a virtio driver.
    VHOST_USER_PROTOCOL_FEATURES = 30
    VERSION_1 = 32
    ACCESS_PLATFORM = 33
    RING_PACKED = 34
    IN_ORDER = 35
    ORDER_PLATFORM = 36
    SR_IOV = 37
    NOTIFICATION_DATA = 38
    NOTIF_CONFIG_DATA = 39
    RING_RESET = 40
    NET_HASH_REPORT = 57
    NET_GUEST_HDRLEN = 59
    NET_RSS = 60
    NET_RSC_EXT = 61
    NET_STANDBY = 62
    NET_SPEED_DUPLEX = 63


VHOST_USER_F_PROTOCOL_FEATURES = Feature.VHOST_USER_PROTOCOL_FEATURES


class DeviceStatus(IntFlag):
    """Device status register bits, written by the driver during init."""

    ACKNOWLEDGE = 1
    DRIVER = 2
    DRIVER_OK = 4
    FEATURES_OK = 8
    DEVICE_NEEDS_RESET = 64
    FAILED = 128


class DescFlag(IntFlag):
    """``vring_desc.flags``."""

    NEXT = 1
    WRITE = 2  # device writes the buffer (an RX buffer); otherwise it reads it
    INDIRECT = 4


class AvailFlag(IntFlag):
    """``vring_avail.flags``: driver tells the device it does not want interrupts."""

    NO_INTERRUPT = 1


class UsedFlag(IntFlag):
    """``vring_used.flags``: device tells the driver it does not want kicks."""

    NO_NOTIFY = 1


class NetHdrFlag(IntFlag):
    """``virtio_net_hdr.flags``."""

    NEEDS_CSUM = 1
    DATA_VALID = 2
    RSC_INFO = 4


class NetHdrGso(IntEnum):
    """``virtio_net_hdr.gso_type`` values (``ECN`` may be OR-ed onto the others)."""

    NONE = 0
    TCPV4 = 1
    UDP = 3
    TCPV6 = 4
    UDP_L4 = 5
    ECN = 0x80


class NetStatus(IntFlag):
    """virtio-net config space ``status`` field (needs ``NET_STATUS``)."""

    LINK_UP = 1
    ANNOUNCE = 2


def feature_mask(*bits: int) -> int:
    """Return the mask with each given feature bit number set."""
    mask = 0
    for bit in bits:
        mask |= 1 << bit
    return mask


def has_feature(mask: int, bit: int) -> bool:
    """True when feature ``bit`` is set in ``mask``."""
    return bool(mask >> bit & 1)


def feature_names(mask: int) -> list[str]:
    """Name every bit set in ``mask``, lowest first; unknown bits read ``bit<N>``."""
    names = []
    for bit in range(mask.bit_length()):
        if mask >> bit & 1:
            try:
                names.append(Feature(bit).name)
            except ValueError:
                names.append(f"bit{bit}")
    return names
