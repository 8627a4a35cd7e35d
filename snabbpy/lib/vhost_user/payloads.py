"""Payload types of vhost-user messages and their byte codecs.

Each codec turns one payload layout of the spec into a Python value and
back.  Codecs report problems as ``ValueError(problem)``; the message layer
adds which request and which side.  All numbers are in the machine's native
byte order, as the spec says (both ends run on the same host).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from .constants import MAX_CONFIG_SIZE, MEMORY_BASELINE_NREGIONS, VRING_INDEX_MASK, VRING_NOFD_MASK

_U64 = struct.Struct("=Q")
_STATE = struct.Struct("=II")
_ADDR = struct.Struct("=IIQQQQ")
_REGION = struct.Struct("=QQQQ")
_TABLE_HEAD = struct.Struct("=II")  # nregions, padding
_CONFIG_HEAD = struct.Struct("=III")  # offset, size, flags
_U64_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class VringState:
    """A ring index and a number: ring size, base index, or enable flag."""

    index: int
    num: int


@dataclass(frozen=True)
class VringAddr:
    """SET_VRING_ADDR: where the frontend placed one ring, in its own addresses."""

    index: int
    flags: int
    desc_user_addr: int
    used_user_addr: int
    avail_user_addr: int
    log_guest_addr: int = 0


@dataclass(frozen=True)
class MemoryRegion:
    """One shared memory region: mmap ``memory_size`` bytes of its fd at
    ``mmap_offset``; ``userspace_addr`` is where the frontend sees it."""

    guest_phys_addr: int
    memory_size: int
    userspace_addr: int
    mmap_offset: int


@dataclass(frozen=True)
class MemoryTable:
    """SET_MEM_TABLE: the regions, in the order of the fds that come with them."""

    regions: tuple[MemoryRegion, ...]


@dataclass(frozen=True)
class VringFile:
    """SET_VRING_KICK/CALL/ERR: which ring, and whether an fd comes along."""

    index: int
    nofd: bool = False


@dataclass(frozen=True)
class DeviceConfig:
    """GET_CONFIG/SET_CONFIG: a window of the device's config space."""

    offset: int
    data: bytes
    flags: int = 0


def _need(body: bytes, size: int) -> None:
    if len(body) != size:
        raise ValueError(f"payload is {len(body)} bytes, expected {size}")


def _u64(value: Any, what: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= _U64_MAX:
        raise ValueError(f"{what} must be an unsigned 64-bit integer, got {value!r}")
    return value


class Codec:
    """One payload layout.  ``sizes`` is what the header's size may say."""

    name = "payload"
    sizes: frozenset[int] = frozenset()

    def encode(self, value: Any) -> bytes:
        """Bytes of ``value``; ValueError if it does not fit the layout."""
        raise NotImplementedError

    def decode(self, body: bytes) -> Any:
        """The value in ``body``; ValueError if the bytes break the layout."""
        raise NotImplementedError

    def fd_counts(self, value: Any) -> tuple[int, ...]:
        """How many fds may come with ``value``."""
        return (0,)


class NoPayload(Codec):
    """Requests with no payload (value ``None``)."""

    name = "no payload"
    sizes = frozenset({0})

    def encode(self, value: Any) -> bytes:
        if value is not None:
            raise ValueError(f"takes no payload, got {value!r}")
        return b""

    def decode(self, body: bytes) -> None:
        _need(body, 0)


class U64(Codec):
    """A single u64 (features, queue count, MTU, ack status ...)."""

    name = "u64"
    sizes = frozenset({8})

    def encode(self, value: Any) -> bytes:
        return _U64.pack(_u64(value, "value"))

    def decode(self, body: bytes) -> int:
        _need(body, 8)
        return _U64.unpack(body)[0]


class State(Codec):
    """A vring state description (index u32, num u32)."""

    name = "vring state"
    sizes = frozenset({_STATE.size})

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, VringState):
            raise ValueError(f"needs a VringState, got {value!r}")
        try:
            return _STATE.pack(value.index, value.num)
        except struct.error as e:
            raise ValueError(f"vring state does not fit two u32: {e}") from None

    def decode(self, body: bytes) -> VringState:
        _need(body, _STATE.size)
        return VringState(*_STATE.unpack(body))


class Addr(Codec):
    """A vring address description (index, flags, desc, used, avail, log)."""

    name = "vring address"
    sizes = frozenset({_ADDR.size})

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, VringAddr):
            raise ValueError(f"needs a VringAddr, got {value!r}")
        try:
            return _ADDR.pack(value.index, value.flags, value.desc_user_addr,
                              value.used_user_addr, value.avail_user_addr, value.log_guest_addr)
        except struct.error as e:
            raise ValueError(f"vring address field out of range: {e}") from None

    def decode(self, body: bytes) -> VringAddr:
        _need(body, _ADDR.size)
        return VringAddr(*_ADDR.unpack(body))


def _check_region(region: MemoryRegion) -> None:
    for field in ("guest_phys_addr", "memory_size", "userspace_addr", "mmap_offset"):
        _u64(getattr(region, field), field)
    if region.memory_size == 0:
        raise ValueError("memory region has size 0")
    # A region that wraps around the address space cannot be mapped or
    # translated safely; refuse it here rather than in every lookup.
    for field in ("guest_phys_addr", "userspace_addr", "mmap_offset"):
        if getattr(region, field) + region.memory_size - 1 > _U64_MAX:
            raise ValueError(f"memory region {field} + memory_size wraps past 2**64")


class Table(Codec):
    """A memory regions description: nregions, padding, then the regions.

    Senders differ: QEMU and DPDK send only the regions in use, some send the
    whole fixed 8-region struct; both are accepted.
    """

    name = "memory table"
    full_size = _TABLE_HEAD.size + MEMORY_BASELINE_NREGIONS * _REGION.size
    sizes = frozenset(_TABLE_HEAD.size + n * _REGION.size
                      for n in range(MEMORY_BASELINE_NREGIONS + 1))

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, MemoryTable):
            raise ValueError(f"needs a MemoryTable, got {value!r}")
        if len(value.regions) > MEMORY_BASELINE_NREGIONS:
            raise ValueError(f"{len(value.regions)} memory regions, at most "
                             f"{MEMORY_BASELINE_NREGIONS} allowed")
        out = [_TABLE_HEAD.pack(len(value.regions), 0)]
        for region in value.regions:
            _check_region(region)
            out.append(_REGION.pack(region.guest_phys_addr, region.memory_size,
                                    region.userspace_addr, region.mmap_offset))
        return b"".join(out)

    def decode(self, body: bytes) -> MemoryTable:
        if len(body) < _TABLE_HEAD.size:
            raise ValueError(f"payload is {len(body)} bytes, too short for a memory table")
        nregions, _padding = _TABLE_HEAD.unpack_from(body)
        if nregions > MEMORY_BASELINE_NREGIONS:
            raise ValueError(f"{nregions} memory regions, at most "
                             f"{MEMORY_BASELINE_NREGIONS} allowed")
        used = _TABLE_HEAD.size + nregions * _REGION.size
        if len(body) not in (used, self.full_size):
            raise ValueError(f"payload is {len(body)} bytes but {nregions} regions need {used}")
        first = _TABLE_HEAD.size
        regions = tuple(MemoryRegion(*_REGION.unpack_from(body, first + i * _REGION.size))
                        for i in range(nregions))
        for region in regions:
            _check_region(region)
        return MemoryTable(regions)

    def fd_counts(self, value: Any) -> tuple[int, ...]:
        return (len(value.regions),)


class SingleRegion(Codec):
    """A single memory region description (ADD/REM_MEM_REG): padding u64 + region."""

    name = "single memory region"
    sizes = frozenset({8 + _REGION.size})

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, MemoryRegion):
            raise ValueError(f"needs a MemoryRegion, got {value!r}")
        _check_region(value)
        return _U64.pack(0) + _REGION.pack(value.guest_phys_addr, value.memory_size,
                                           value.userspace_addr, value.mmap_offset)

    def decode(self, body: bytes) -> MemoryRegion:
        _need(body, 8 + _REGION.size)
        region = MemoryRegion(*_REGION.unpack_from(body, 8))
        _check_region(region)
        return region


class File(Codec):
    """The u64 of SET_VRING_KICK/CALL/ERR: ring index (bits 0-7), NOFD (bit 8)."""

    name = "vring file"
    sizes = frozenset({8})

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, VringFile):
            raise ValueError(f"needs a VringFile, got {value!r}")
        if not 0 <= value.index <= VRING_INDEX_MASK:
            raise ValueError(f"ring index {value.index} does not fit in 8 bits")
        return _U64.pack(value.index | (VRING_NOFD_MASK if value.nofd else 0))

    def decode(self, body: bytes) -> VringFile:
        _need(body, 8)
        (raw,) = _U64.unpack(body)
        if raw & ~(VRING_INDEX_MASK | VRING_NOFD_MASK):
            raise ValueError(f"u64 {raw:#x} sets bits above bit 8, which are reserved")
        return VringFile(raw & VRING_INDEX_MASK, bool(raw & VRING_NOFD_MASK))

    def fd_counts(self, value: Any) -> tuple[int, ...]:
        return (0,) if value.nofd else (1,)


class Config(Codec):
    """A device config space window: offset, size, flags, then size bytes."""

    name = "device config"
    sizes = frozenset(range(_CONFIG_HEAD.size, _CONFIG_HEAD.size + MAX_CONFIG_SIZE + 1))

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, DeviceConfig):
            raise ValueError(f"needs a DeviceConfig, got {value!r}")
        if len(value.data) > MAX_CONFIG_SIZE:
            raise ValueError(f"config data is {len(value.data)} bytes, at most "
                             f"{MAX_CONFIG_SIZE} allowed")
        try:
            return _CONFIG_HEAD.pack(value.offset, len(value.data), value.flags) + bytes(value.data)
        except struct.error as e:
            raise ValueError(f"config field out of range: {e}") from None

    def decode(self, body: bytes) -> DeviceConfig:
        if len(body) < _CONFIG_HEAD.size:
            raise ValueError(f"payload is {len(body)} bytes, too short for a device config")
        offset, size, flags = _CONFIG_HEAD.unpack_from(body)
        if size > MAX_CONFIG_SIZE:
            raise ValueError(f"config size {size} is above the {MAX_CONFIG_SIZE}-byte limit")
        _need(body, _CONFIG_HEAD.size + size)
        return DeviceConfig(offset, bytes(body[_CONFIG_HEAD.size:]), flags)


class ConfigReply(Config):
    """GET_CONFIG's reply: a device config, or an empty payload meaning failure (None)."""

    sizes = Config.sizes | {0}

    def encode(self, value: Any) -> bytes:
        return b"" if value is None else super().encode(value)

    def decode(self, body: bytes) -> DeviceConfig | None:
        return None if not body else super().decode(body)


NO_PAYLOAD = NoPayload()
U64_PAYLOAD = U64()
STATE = State()
ADDR = Addr()
TABLE = Table()
SINGLE_REGION = SingleRegion()
FILE = File()
CONFIG = Config()
CONFIG_REPLY = ConfigReply()
