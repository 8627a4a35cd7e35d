"""The transport interface: how the virtio-net device object reaches a
device's registers, whatever carries them.

A transport is the only part of vguest that does I/O for the control path.
``VirtioNetDevice`` (device.py) drives initialisation through it and the
virtqueues (virtq.py) are plain memory, so a new transport (PCI legacy, PCI
modern, vhost-user, an in-process model for tests) plugs in without touching
the rest. Implement every method of ``Transport`` below.

The sequence the device follows (virtio 1.x section 3.1.1)::

    reset()
    set_status(ACKNOWLEDGE); set_status(ACKNOWLEDGE | DRIVER)
    offered = get_features()                  # 64-bit mask
    set_features(offered & wanted)
    set_status(... | FEATURES_OK)             # only when VERSION_1 was negotiated
    get_status() & FEATURES_OK                # else the device refused
    for queue in (0, 1):                      # 0 = receiveq1, 1 = transmitq1
        max_queue_size(queue)                 # 0: the queue does not exist
        set_queue_size(queue, size)           # skipped when fixed_queue_size
        ring_layout(size, event_idx)          # where the rings go, in one area
        set_queue_addresses(queue, desc, avail, used)   # device addresses
        enable_queue(queue)
    set_status(... | DRIVER_OK)
    ... notify(queue) whenever a queue wants a kick ...
    reset(); close()

Addresses are *device* addresses (``dma.dma_address(virtual)``): virtual
addresses for vhost-user, physical addresses for PCI. ``ring_layout`` lets a
transport say how the three parts of a ring must be placed: a legacy PCI
transport returns ``legacy_layout(size)`` with ``ring_align = 4096`` and
derives the queue PFN from ``desc``; a modern one returns ``modern_layout``.
A transport that cannot do something (a legacy device has no VERSION_1)
simply never offers it; one that fails raises ``TransportError`` naming what
went wrong.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from snabbpy.lib.virtio.ring import RingLayout, modern_layout

#: virtio-net config space (virtio 1.x 5.1.4): mac[6], status u16, max_virtqueue_pairs u16.
CONFIG_MAC = 0
CONFIG_STATUS = 6
CONFIG_MAX_PAIRS = 8


class TransportError(Exception):
    """A transport could not talk to its device; the message says how."""


class Transport(ABC):
    """Register access to one virtio device. See the module docstring."""

    #: Short name for messages ("vhost-user /run/x.sock", "pci 0000:00:03.0").
    name: str = "transport"
    #: Alignment of the one area holding a queue's three rings.
    ring_align: int = 4096
    #: Feature bits the transport can carry (legacy PCI: 32).
    feature_bits: int = 64
    #: True when the queue size is the device's (legacy PCI): not settable.
    fixed_queue_size: bool = False
    #: True when the transport itself tells the device which queue pairs are
    #: in use (vhost-user: SET_VRING_ENABLE of every ring set up, as QEMU
    #: and virtio_user do); False: the driver sends VQ_PAIRS_SET on the
    #: device's control queue.
    sets_queue_pairs: bool = False

    @abstractmethod
    def reset(self) -> None:
        """Resets the device: status 0, queues stopped, nothing in flight.
        After it returns the device no longer touches the rings."""

    @abstractmethod
    def get_status(self) -> int:
        """The device status register (``DeviceStatus`` bits)."""

    @abstractmethod
    def set_status(self, status: int) -> None:
        """Writes the device status register (the whole value)."""

    @abstractmethod
    def get_features(self) -> int:
        """The device's offered feature bits, 64 bits (legacy: the low 32)."""

    @abstractmethod
    def set_features(self, features: int) -> None:
        """Writes the driver's accepted feature bits (a subset of the offer)."""

    @abstractmethod
    def max_queue_size(self, queue: int) -> int:
        """Largest size of ``queue`` (selecting it first); 0 if it does not
        exist. Called after ``set_features``: a device's maximum that is no
        power of two is refused unless RING_PACKED was negotiated."""

    @abstractmethod
    def set_queue_size(self, queue: int, size: int) -> None:
        """Sets the size of ``queue``, at most the maximum (a power of two on
        a split ring, any size on a packed one)."""

    def ring_layout(self, size: int, event_idx: bool) -> RingLayout:
        """Where the descriptor table, avail and used rings go inside one
        area of ``ring_align`` alignment. Default: the compact modern layout."""
        return modern_layout(size, event_idx=True)

    def area_align(self, total: int) -> int:
        """Alignment of a packed ring's one area of ``total`` bytes (ring,
        driver and device areas). Default: ``ring_align``."""
        return self.ring_align

    @abstractmethod
    def set_queue_addresses(self, queue: int, desc: int, avail: int, used: int) -> None:
        """Tells the device where ``queue``'s rings are (device addresses)."""

    @abstractmethod
    def enable_queue(self, queue: int) -> None:
        """Lets the device use ``queue`` (modern: queue_enable = 1)."""

    @abstractmethod
    def notify(self, queue: int) -> None:
        """Kicks the device: ``queue`` has new available buffers."""

    @abstractmethod
    def read_config(self, offset: int, length: int) -> bytes:
        """``length`` bytes of the device-specific config space at ``offset``."""

    @abstractmethod
    def close(self) -> None:
        """Releases what the transport holds (sockets, fds, mappings)."""
