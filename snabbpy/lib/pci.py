"""Sysfs PCI access for userspace drivers: find, unbind, bus master, BARs.

No engine here, and no virtio logic beyond reading its vendor capabilities:
the vguest transports build on these verbs. The sysfs root is a parameter
so tests can run against a fake tree (config, resourceN, driver symlink).

    dev = pci.PCIDevice("0000:00:05.0")
    dev.unbind()                  # from its kernel driver, if any
    dev.enable_bus_master()
    bar = dev.open_bar(0)         # IOBar or MemBar
    bar.read(0x12, 1); bar.write(0x12, 1, 0)
    dev.close()
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from snabbpy.lib.pci_bar import IOBar, MemBar, PCIError, sysfs_error

__all__ = ["IOBar", "MemBar", "PCIError", "PCIDevice", "Capability", "VirtioCap",
           "canonical_address", "find_device", "list_devices", "list_virtio_net"]

SYSFS = Path("/sys")
VIRTIO_VENDOR = 0x1AF4
VIRTIO_NET_DEVICES = (0x1000, 0x1041)  # legacy/transitional, modern
NET_CLASS = 0x0200  # class code without the programming interface byte

CONFIG_COMMAND = 0x04
CONFIG_STATUS = 0x06
CONFIG_CAP_POINTER = 0x34
COMMAND_BUS_MASTER = 1 << 2
STATUS_CAP_LIST = 1 << 4
CAP_VENDOR = 0x09
VIRTIO_PCI_CAP_NOTIFY_CFG = 2
RESOURCE_IO = 0x100  # IORESOURCE_IO in the flags column of `resource`
RESOURCE_MEM = 0x200

_ADDRESS = re.compile(r"^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$")


def canonical_address(address: str) -> str:
    """Return DDDD:BB:SS.F for an address given with or without the domain."""
    match = _ADDRESS.match(address.strip().lower())
    if not match:
        raise PCIError(f"not a PCI address: {address!r} (expected e.g. 0000:00:05.0)")
    domain, bus, slot, fn = match.groups()
    return f"{domain or '0000'}:{bus}:{slot}.{fn}"


@dataclass(frozen=True)
class Capability:
    """One entry of the config-space capability list."""

    offset: int
    cap_id: int
    data: bytes  # the capability's bytes, cap_len long for vendor caps


@dataclass(frozen=True)
class VirtioCap:
    """A virtio 1.x vendor capability: where a config structure lives."""

    offset: int
    cfg_type: int
    bar: int
    bar_offset: int
    length: int
    notify_off_multiplier: int | None = None  # only for the notify cap


class PCIDevice:
    """One PCI function in sysfs, by address, for a userspace driver."""

    def __init__(self, address: str, sysfs: Path | str = SYSFS, rebind: bool = False) -> None:
        self.address = canonical_address(address)
        self.sysfs = Path(sysfs)
        self.path = self.sysfs / "bus" / "pci" / "devices" / self.address
        if not self.path.exists():
            raise PCIError(f"no PCI device {self.address} in {self.path.parent}")
        self.rebind_on_close = rebind
        self.unbound_from: str | None = None
        self.bars: dict[int, IOBar | MemBar] = {}

    def __repr__(self) -> str:
        return f"PCIDevice({self.address!r})"

    def _read_hex(self, name: str) -> int:
        try:
            text = (self.path / name).read_text().strip()
        except OSError as e:
            raise sysfs_error(e, f"read {name} of {self.address}") from None
        try:
            return int(text, 16)
        except ValueError:
            raise PCIError(f"{name} of {self.address} is not a hex number: {text!r}") from None

    @property
    def vendor(self) -> int:
        """The PCI vendor ID (0x1af4 for virtio)."""
        return self._read_hex("vendor")

    @property
    def device(self) -> int:
        """The PCI device ID (0x1000 legacy virtio-net, 0x1041 modern)."""
        return self._read_hex("device")

    @property
    def pci_class(self) -> int:
        """The 24-bit class code (0x020000: Ethernet controller)."""
        return self._read_hex("class")

    @property
    def driver(self) -> str | None:
        """Name of the kernel driver bound to the device, or None."""
        link = self.path / "driver"
        return os.path.basename(os.readlink(link)) if link.is_symlink() else None

    def is_virtio_net(self) -> bool:
        """True for a virtio-net function (legacy, transitional or modern)."""
        return (self.vendor == VIRTIO_VENDOR and self.device in VIRTIO_NET_DEVICES
                and self.pci_class >> 8 == NET_CLASS)

    def interfaces(self) -> dict[str, str]:
        """Kernel network interfaces of this function (directly, or through
        a virtio child device) and their operstate, e.g. {"eth0": "up"}."""
        found = {}
        for net in [self.path / "net", *self.path.glob("virtio*/net")]:
            for iface in net.glob("*") if net.is_dir() else ():
                state = iface / "operstate"
                found[iface.name] = state.read_text().strip() if state.exists() else "unknown"
        return found

    def unbind(self) -> None:
        """Detach the device from its kernel driver (no-op if none)."""
        driver = self.driver
        if driver is None:
            return
        try:
            (self.path / "driver" / "unbind").write_text(self.address)
        except OSError as e:
            raise sysfs_error(e, f"unbind {self.address} from {driver}") from None
        self.unbound_from = driver

    def rebind(self) -> None:
        """Give the device back to the driver unbind() took it from."""
        if self.unbound_from is None or self.driver is not None:
            return
        bind = self.sysfs / "bus" / "pci" / "drivers" / self.unbound_from / "bind"
        try:
            bind.write_text(self.address)
        except OSError as e:
            raise sysfs_error(e, f"rebind {self.address} to {self.unbound_from}") from None
        self.unbound_from = None

    def read_config(self, offset: int, width: int) -> int:
        """Read a little-endian value from config space."""
        try:
            with open(self.path / "config", "rb") as f:
                data = os.pread(f.fileno(), width, offset)
        except OSError as e:
            raise sysfs_error(e, f"read config of {self.address}") from None
        if len(data) != width:
            raise PCIError(
                f"config of {self.address} too short for {offset:#x}+{width}"
                " (only root may read past its first 64 bytes)"
            )
        return int.from_bytes(data, "little")

    def write_config(self, offset: int, width: int, value: int) -> None:
        """Write a little-endian value to config space (needs root)."""
        try:
            with open(self.path / "config", "r+b") as f:
                os.pwrite(f.fileno(), value.to_bytes(width, "little"), offset)
        except OSError as e:
            raise sysfs_error(e, f"write config of {self.address}") from None

    def enable_bus_master(self) -> None:
        """Set the command register's bus master bit so the device can DMA."""
        command = self.read_config(CONFIG_COMMAND, 2)
        if not command & COMMAND_BUS_MASTER:
            self.write_config(CONFIG_COMMAND, 2, command | COMMAND_BUS_MASTER)

    def capabilities(self) -> list[Capability]:
        """Walk the config-space capability list."""
        if not self.read_config(CONFIG_STATUS, 2) & STATUS_CAP_LIST:
            return []
        caps, seen = [], set()
        pointer = self.read_config(CONFIG_CAP_POINTER, 1) & ~3
        while pointer and pointer not in seen:  # a loop would be a broken device
            seen.add(pointer)
            cap_id = self.read_config(pointer, 1)
            length = self.read_config(pointer + 2, 1) if cap_id == CAP_VENDOR else 2
            data = self.read_config(pointer, max(length, 2)).to_bytes(max(length, 2), "little")
            caps.append(Capability(pointer, cap_id, data))
            pointer = self.read_config(pointer + 1, 1) & ~3
        return caps

    def virtio_capabilities(self) -> list[VirtioCap]:
        """Return the virtio 1.x structures (common, notify, isr, device, pci)."""
        result = []
        for cap in self.capabilities():
            if cap.cap_id != CAP_VENDOR or len(cap.data) < 16:
                continue
            cfg_type, bar = cap.data[3], cap.data[4]
            offset, length = struct.unpack_from("<II", cap.data, 8)
            multiplier = None
            if cfg_type == VIRTIO_PCI_CAP_NOTIFY_CFG and len(cap.data) >= 20:
                multiplier = struct.unpack_from("<I", cap.data, 16)[0]
            result.append(VirtioCap(cap.offset, cfg_type, bar, offset, length, multiplier))
        return result

    def resource(self, n: int) -> tuple[int, int, int]:
        """Return (start, size, flags) of BAR n from the `resource` file."""
        try:
            lines = (self.path / "resource").read_text().splitlines()
        except OSError as e:
            raise sysfs_error(e, f"read resources of {self.address}") from None
        if not 0 <= n < len(lines):
            raise PCIError(f"{self.address} has no BAR {n}")
        try:
            start, end, flags = (int(x, 16) for x in lines[n].split())
        except ValueError:
            raise PCIError(f"resource of {self.address}: BAR {n} line {lines[n]!r} is not "
                           "three hex numbers (start end flags)") from None
        return start, (end - start + 1) if end else 0, flags

    def open_bar(self, n: int, allow_bound: bool = False) -> IOBar | MemBar:
        """Open BAR n: an IOBar for I/O ports, a MemBar (mmap) for memory."""
        if self.driver and not allow_bound:
            raise PCIError(f"{self.address} is bound to driver {self.driver}; unbind() it first")
        if n in self.bars:
            return self.bars[n]
        _, size, flags = self.resource(n)
        path = self.path / f"resource{n}"
        if not size or not path.exists():
            raise PCIError(f"{self.address} BAR {n} is not implemented")
        bar = IOBar(path, size) if flags & RESOURCE_IO else MemBar(path, size)
        self.bars[n] = bar
        return bar

    def close(self) -> None:
        """Close open BARs and, if asked at construction, rebind the driver."""
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
        if self.rebind_on_close:
            self.rebind()


def find_device(address: str, sysfs: Path | str = SYSFS) -> PCIDevice:
    """Return the PCIDevice at `address`, or raise PCIError if there is none."""
    return PCIDevice(address, sysfs)


def list_devices(sysfs: Path | str = SYSFS) -> list[PCIDevice]:
    """Return every PCI function in sysfs, sorted by address."""
    root = Path(sysfs) / "bus" / "pci" / "devices"
    if not root.is_dir():
        raise PCIError(f"{root} does not exist (no sysfs mounted?)")
    return [PCIDevice(p.name, sysfs) for p in sorted(root.iterdir())]


def list_virtio_net(sysfs: Path | str = SYSFS) -> list[str]:
    """Return the addresses of virtio-net functions, bound or not."""
    return [d.address for d in list_devices(sysfs) if d.is_virtio_net()]
