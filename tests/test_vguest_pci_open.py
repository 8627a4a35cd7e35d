"""open_pci_transport against a fake sysfs tree (test_pci.py builds it):
which transport a device gets, bus mastering, and the errors for devices
that are not what vguest can drive. Register behaviour is tested on the
register models (test_vguest_pci_model.py, test_vguest_pci_modern.py)."""

from __future__ import annotations

import struct

import pytest
from test_pci import add_device, config_space

from snabbpy.apps.vguest.pci_legacy import LegacyTransport
from snabbpy.apps.vguest.pci_transport import open_pci_transport
from snabbpy.apps.vguest.transport import TransportError
from snabbpy.core.config import ConfigError
from snabbpy.lib import pci

LEGACY = "0000:00:07.0"


def full_modern_config() -> bytes:
    """config_space() plus the ISR and device config capabilities."""
    cfg = bytearray(config_space(0x1041))
    cfg[0x51] = 0x70  # notify cap now continues to ISR
    struct.pack_into("<BBBBBBxxII", cfg, 0x70, 0x09, 0x80, 16, 3, 4, 0, 0x1000, 0x1000)
    struct.pack_into("<BBBBBBxxII", cfg, 0x80, 0x09, 0x68, 16, 4, 4, 0, 0x2000, 0x1000)
    return bytes(cfg)


@pytest.fixture
def sysfs(tmp_path):
    add_device(tmp_path, "0000:00:05.0", device=0x1041, config=full_modern_config())
    add_device(tmp_path, "0000:00:06.0", device=0x1041)  # ISR and device caps missing
    add_device(tmp_path, LEGACY, device=0x1000, config=config_space(0x1000, status=0))
    add_device(tmp_path, "0000:00:03.0", device=0x1009, cls=0x000200)  # virtio-9p
    return tmp_path


def bus_master(sysfs, address: str) -> bool:
    dev = pci.PCIDevice(address, sysfs)
    return bool(dev.read_config(pci.CONFIG_COMMAND, 2) & pci.COMMAND_BUS_MASTER)


def test_a_device_without_capabilities_gets_the_legacy_transport(sysfs) -> None:
    t = open_pci_transport(LEGACY, sysfs=sysfs)
    assert isinstance(t, LegacyTransport) and t.name == f"pci {LEGACY} legacy"
    assert t.config_offset == 20  # no MSI-X capability
    assert bus_master(sysfs, LEGACY)
    t.close()


def test_a_modern_device_gets_windows_on_its_capabilities(sysfs) -> None:
    t = open_pci_transport("0000:00:05.0", mode="modern", sysfs=sysfs)
    assert t.name == "pci 0000:00:05.0 modern"
    assert (t.common.offset, t.isr.offset, t.device.offset, t.notify_block.offset) == (
        0, 0x1000, 0x2000, 0x3000)
    assert t.multiplier == 4
    t.close()


def test_missing_capabilities_are_named(sysfs) -> None:
    with pytest.raises(TransportError, match="no virtio ISR, device config capability"):
        open_pci_transport("0000:00:06.0", mode="modern", sysfs=sysfs)


def test_a_modern_only_device_has_no_legacy_interface(sysfs) -> None:
    with pytest.raises(TransportError, match="modern-only device"):
        open_pci_transport("0000:00:05.0", mode="legacy", sysfs=sysfs)


def test_only_virtio_net_functions_are_driven(sysfs) -> None:
    with pytest.raises(TransportError, match="0000:00:03.0 is not a virtio-net device"):
        open_pci_transport("0000:00:03.0", sysfs=sysfs)
    with pytest.raises(TransportError, match="no PCI device 0000:00:09.0"):
        open_pci_transport("0000:00:09.0", sysfs=sysfs)


def test_pci_mode_is_checked(sysfs) -> None:
    with pytest.raises(ConfigError, match="pci_mode: must be one of auto, legacy, modern"):
        open_pci_transport(LEGACY, mode="virtio-1", sysfs=sysfs)


def test_a_device_the_kernel_uses_as_an_up_interface_is_left_alone(sysfs) -> None:
    iface = sysfs / "bus" / "pci" / "devices" / LEGACY / "virtio1" / "net" / "eth0"
    iface.mkdir(parents=True)
    (iface / "operstate").write_text("up\n")
    with pytest.raises(TransportError, match="network interface eth0 of this kernel and it is up"):
        open_pci_transport(LEGACY, sysfs=sysfs)
    (iface / "operstate").write_text("down\n")
    open_pci_transport(LEGACY, sysfs=sysfs).close()
