"""TAP devices: open (creating or attaching), bring up, set the MTU.

Linux's interface: ``open("/dev/net/tun")`` and ``ioctl(TUNSETIFF)`` with
``IFF_TAP | IFF_NO_PI`` attach the fd to the named device, creating it
when missing; a device made this way lives as long as the fd unless made
persistent (``TUNSETPERSIST``, ``ip tuntap add``). Flags and MTU are set
with the SIOCSIF* ioctls on any socket.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
from pathlib import Path

from snabbpy.core.config import ConfigError

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCSIFMTU = 0x8922
IFF_UP = 0x1
IFNAMSIZ = 16


def exists(name: str) -> bool:
    """True when a network interface ``name`` exists in this namespace."""
    return Path("/sys/class/net", name).exists()


def check_name(name: str) -> None:
    """ConfigError unless ``name`` can name an interface."""
    if not name or len(name.encode()) >= IFNAMSIZ or "/" in name or name.strip() != name \
            or name in (".", ".."):
        raise ConfigError(f"name {name!r}: not an interface name (1 to {IFNAMSIZ - 1} "
                          "characters, no '/' or spaces)")


def open_tap(name: str) -> tuple[int, bool]:
    """A non-blocking fd on TAP device ``name`` and whether this call
    created it (it then goes away when the fd is closed)."""
    check_name(name)
    created = not exists(name)
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cannot open /dev/net/tun: {exc.strerror}") from None
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        raise ConfigError(_tunsetiff_error(name, created, exc)) from None
    return fd, created


def _tunsetiff_error(name: str, created: bool, exc: OSError) -> str:
    if exc.errno == 1:  # EPERM
        return f"name {name!r}: a TAP device needs root (CAP_NET_ADMIN)"
    if exc.errno == 16:  # EBUSY
        return f"name {name!r}: the TAP device is busy (another process has it open)"
    if exc.errno == 22 and not created:  # EINVAL
        return f"name {name!r}: the interface exists and is not a TAP device"
    return f"name {name!r}: cannot attach a TAP device: {exc.strerror}"


def _ifreq_ioctl(name: str, request: int, value: int | None = None) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        arg = struct.pack("16si20x", name.encode(), value or 0)
        return struct.unpack_from("16si", fcntl.ioctl(s.fileno(), request, arg))[1]


def bring_up(name: str) -> None:
    """Sets IFF_UP on interface ``name``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH22x", name.encode(), 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH22x", name.encode(),
                                                          flags | IFF_UP))


def set_mtu(name: str, mtu: int) -> None:
    """Sets the MTU of interface ``name``; ConfigError when refused."""
    try:
        _ifreq_ioctl(name, SIOCSIFMTU, mtu)
    except OSError as exc:
        raise ConfigError(f"mtu {mtu}: refused by the kernel: {exc.strerror}") from None
