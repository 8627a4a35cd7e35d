"""Opening a virtio-net PCI function for vguest: sysfs, then a transport.

``open_pci_transport("0000:00:05.0", mode)`` takes the function from any
kernel driver, enables bus mastering (so the device may DMA), and returns a
``LegacyTransport`` (I/O BAR 0) or a ``ModernTransport`` (virtio 1.x
capabilities in memory BARs). ``mode="auto"`` picks modern when the device
has the modern capabilities and offers VERSION_1, else legacy; a
transitional device (id 0x1000 with capabilities) can be forced either way.
The capabilities are checked before use: each must name an implemented BAR
and lie inside it.
"""

from __future__ import annotations

from pathlib import Path

from snabbpy.apps.vguest.pci_common import Window
from snabbpy.apps.vguest.pci_legacy import CONFIG, CONFIG_MSIX, LegacyTransport
from snabbpy.apps.vguest.pci_modern import ModernTransport
from snabbpy.apps.vguest.transport import Transport, TransportError
from snabbpy.core.config import ConfigError
from snabbpy.lib import pci

MODES = ("auto", "legacy", "modern")
CAP_COMMON, CAP_NOTIFY, CAP_ISR, CAP_DEVICE = 1, 2, 3, 4
CAP_NAMES = {CAP_COMMON: "common config", CAP_NOTIFY: "notify", CAP_ISR: "ISR",
             CAP_DEVICE: "device config"}
CAP_MSIX = 0x11
MSIX_ENABLE = 1 << 15
MODERN_ONLY_DEVICE = 0x1041


def check_mode(mode: str) -> str:
    """``mode`` if it is one of auto, legacy, modern (a config converter)."""
    if mode not in MODES:
        raise ValueError(f"must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def open_pci_transport(pciaddr: str, mode: str = "auto",
                       sysfs: Path | str = pci.SYSFS) -> Transport:
    """The transport for the virtio-net function at ``pciaddr``."""
    try:
        check_mode(mode)
    except ValueError as e:
        raise ConfigError(f"vguest: pci_mode: {e}") from None
    try:
        dev = pci.PCIDevice(pciaddr, sysfs)
        if not dev.is_virtio_net():
            raise TransportError(f"{dev.address} is not a virtio-net device "
                                 f"(vendor {dev.vendor:#x}, device {dev.device:#x})")
        in_use = [name for name, state in dev.interfaces().items() if state == "up"]
        if in_use:
            raise TransportError(f"{dev.address} is network interface {', '.join(in_use)} of "
                                 "this kernel and it is up: take it down first "
                                 "(ip link set dev NAME down) if it is really free")
        dev.unbind()
        dev.enable_bus_master()
    except pci.PCIError as e:
        raise TransportError(f"pci {pciaddr}: {e}") from None
    try:
        return _open(dev, mode)
    except (pci.PCIError, TransportError) as e:
        dev.close()
        raise TransportError(str(e) if str(e).startswith("pci ") else f"pci {dev.address}: {e}"
                             ) from None


def _open(dev: pci.PCIDevice, mode: str) -> Transport:
    caps = {c.cfg_type: c for c in reversed(dev.virtio_capabilities())}  # first of each wins
    if mode == "legacy" or (mode == "auto" and CAP_COMMON not in caps):
        if dev.device == MODERN_ONLY_DEVICE:
            raise TransportError("a modern-only device (id 0x1041) has no legacy interface")
        return open_legacy(dev)
    modern = open_modern(dev, caps)
    if mode == "modern":
        return modern
    try:
        modern.get_features()
    except TransportError:
        if dev.device == MODERN_ONLY_DEVICE:
            raise
        return open_legacy(dev)  # transitional, VERSION_1 not offered
    return modern


def msix_enabled(dev: pci.PCIDevice) -> bool:
    """True when the function's MSI-X capability has its enable bit set."""
    for cap in dev.capabilities():
        if cap.cap_id == CAP_MSIX:
            return bool(dev.read_config(cap.offset + 2, 2) & MSIX_ENABLE)
    return False


def open_legacy(dev: pci.PCIDevice) -> LegacyTransport:
    """The legacy transport over I/O BAR 0."""
    _, size, flags = dev.resource(0)
    if not flags & pci.RESOURCE_IO or size < CONFIG:
        raise TransportError(f"pci {dev.address}: BAR 0 is not a legacy virtio I/O BAR "
                             f"(size {size}, flags {flags:#x})")
    bar = dev.open_bar(0)
    msix = msix_enabled(dev)
    config_size = size - (CONFIG_MSIX if msix else CONFIG)
    return LegacyTransport(bar, name=f"pci {dev.address} legacy", msix_enabled=msix,
                           config_size=max(config_size, 0), on_close=dev.close)


def cap_window(dev: pci.PCIDevice, cap: pci.VirtioCap) -> Window:
    """The register block a virtio capability points at, checked to lie in
    an implemented BAR."""
    what = f"{CAP_NAMES[cap.cfg_type]} capability at config {cap.offset:#x}"
    if cap.bar > 5:
        raise TransportError(f"{what} names BAR {cap.bar}, which cannot exist")
    _, size, _ = dev.resource(cap.bar)
    if size == 0:
        raise TransportError(f"{what} names BAR {cap.bar}, which is not implemented")
    if cap.bar_offset + cap.length > size or cap.length == 0:
        raise TransportError(f"{what} points outside BAR {cap.bar}: offset {cap.bar_offset:#x} "
                             f"length {cap.length:#x}, BAR size {size:#x}")
    return Window(dev.open_bar(cap.bar), cap.bar_offset, cap.length, what)


def open_modern(dev: pci.PCIDevice, caps: dict[int, pci.VirtioCap]) -> ModernTransport:
    """The modern transport over the virtio 1.x capabilities."""
    missing = [CAP_NAMES[t] for t in CAP_NAMES if t not in caps]
    if missing:
        raise TransportError(f"pci {dev.address}: no virtio {', '.join(missing)} capability "
                             "(not a modern device: use pci_mode legacy)")
    notify = caps[CAP_NOTIFY]
    if notify.notify_off_multiplier is None:
        raise TransportError(f"pci {dev.address}: notify capability at config "
                             f"{notify.offset:#x} is too short for notify_off_multiplier")
    windows = {t: cap_window(dev, caps[t]) for t in CAP_NAMES}
    return ModernTransport(windows[CAP_COMMON], windows[CAP_NOTIFY],
                           notify.notify_off_multiplier, windows[CAP_ISR], windows[CAP_DEVICE],
                           name=f"pci {dev.address} modern", on_close=dev.close)
