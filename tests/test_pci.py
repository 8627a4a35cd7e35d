"""snabbpy.lib.pci against a fake sysfs tree built in a temporary directory."""

import errno
import os
import struct

import pytest

from snabbpy.lib import pci

ADDR = "0000:00:05.0"


def config_space(device=0x1041, status=0x10):
    cfg = bytearray(256)
    struct.pack_into("<HHHH", cfg, 0, 0x1AF4, device, 0x0003, status)
    cfg[0x34] = 0x40
    # virtio common cfg: cap_vndr, next, len, cfg_type, bar, id, pad, offset, length
    struct.pack_into("<BBBBBBxxII", cfg, 0x40, 0x09, 0x50, 16, 1, 4, 0, 0x0000, 0x1000)
    struct.pack_into("<BBBBBBxxIII", cfg, 0x50, 0x09, 0x68, 20, 2, 4, 0, 0x3000, 0x1000, 4)
    struct.pack_into("<BB", cfg, 0x68, 0x11, 0x00)  # MSI-X, end of list
    return bytes(cfg)


def add_device(sysfs, addr=ADDR, vendor=0x1AF4, device=0x1041, cls=0x020000, driver=None,
               config=None):
    dev = sysfs / "bus" / "pci" / "devices" / addr
    dev.mkdir(parents=True)
    (dev / "vendor").write_text(f"{vendor:#06x}\n")
    (dev / "device").write_text(f"{device:#06x}\n")
    (dev / "class").write_text(f"{cls:#08x}\n")
    (dev / "config").write_bytes(config if config is not None else config_space(device))
    (dev / "resource").write_text(
        "0x000000000000c040 0x000000000000c05f 0x0000000000040101\n"
        "0x00000000febd1000 0x00000000febd1fff 0x0000000000040200\n"
        + "0x0000000000000000 0x0000000000000000 0x0000000000000000\n" * 2
        + "0x00000000fe000000 0x00000000fe003fff 0x000000000014220c\n")
    (dev / "resource0").write_bytes(bytes(range(32)))
    (dev / "resource4").write_bytes(bytes(0x4000))
    if driver:
        drv = sysfs / "bus" / "pci" / "drivers" / driver
        drv.mkdir(parents=True, exist_ok=True)
        for name in ("bind", "unbind"):
            (drv / name).write_text("")
        os.symlink(drv, dev / "driver")
    return dev


@pytest.fixture
def sysfs(tmp_path):
    add_device(tmp_path, ADDR, device=0x1041)
    add_device(tmp_path, "0000:00:06.0", device=0x1000, driver="virtio-pci")
    add_device(tmp_path, "0000:00:03.0", device=0x1009, cls=0x000200)  # virtio-9p
    add_device(tmp_path, "0000:00:01.0", vendor=0x8086, device=0x7000, cls=0x060100)
    return tmp_path


def test_list_virtio_net_finds_legacy_and_modern_bound_or_not(sysfs):
    assert pci.list_virtio_net(sysfs) == ["0000:00:05.0", "0000:00:06.0"]


def test_ids_and_driver(sysfs):
    dev = pci.find_device("00:06.0", sysfs)
    assert (dev.address, dev.vendor, dev.device, dev.pci_class) == (
        "0000:00:06.0", 0x1AF4, 0x1000, 0x020000)
    assert dev.driver == "virtio-pci" and dev.is_virtio_net()
    assert pci.find_device(ADDR, sysfs).driver is None


def test_unknown_device_and_bad_address(sysfs):
    with pytest.raises(pci.PCIError, match="no PCI device 0000:00:09.0"):
        pci.find_device("0000:00:09.0", sysfs)
    with pytest.raises(pci.PCIError, match="not a PCI address"):
        pci.find_device("eth0", sysfs)


def test_unbind_writes_the_address_and_rebind_on_close(sysfs):
    dev = pci.PCIDevice("0000:00:06.0", sysfs, rebind=True)
    dev.unbind()
    drv = sysfs / "bus" / "pci" / "drivers" / "virtio-pci"
    assert (drv / "unbind").read_text() == "0000:00:06.0"
    assert dev.unbound_from == "virtio-pci"
    os.unlink(dev.path / "driver")  # what the kernel does on unbind
    dev.close()
    assert (drv / "bind").read_text() == "0000:00:06.0"


def test_unbind_without_permission_says_root(sysfs, monkeypatch):
    def denied(self, *args, **kwargs):  # what sysfs answers a non-root writer
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(type(sysfs), "write_text", denied)
    with pytest.raises(pci.PCIError, match="must run as root"):
        pci.find_device("0000:00:06.0", sysfs).unbind()


def test_enable_bus_master_sets_bit_2_of_command(sysfs):
    dev = pci.find_device(ADDR, sysfs)
    dev.enable_bus_master()
    assert dev.read_config(pci.CONFIG_COMMAND, 2) == 0x0007
    assert dev.read_config(0, 4) == 0x1041_1AF4  # nothing else touched


def test_capability_list_and_virtio_caps(sysfs):
    dev = pci.find_device(ADDR, sysfs)
    assert [(c.offset, c.cap_id) for c in dev.capabilities()] == [
        (0x40, 0x09), (0x50, 0x09), (0x68, 0x11)]
    common, notify = dev.virtio_capabilities()
    assert common == pci.VirtioCap(0x40, 1, 4, 0x0000, 0x1000, None)
    assert notify == pci.VirtioCap(0x50, 2, 4, 0x3000, 0x1000, 4)


def test_no_capability_list(tmp_path):
    add_device(tmp_path, config=config_space(status=0))
    assert pci.find_device(ADDR, tmp_path).capabilities() == []


def test_looping_capability_list_ends(tmp_path):
    cfg = bytearray(config_space())
    cfg[0x69] = 0x40  # MSI-X points back to the first cap
    add_device(tmp_path, config=bytes(cfg))
    assert len(pci.find_device(ADDR, tmp_path).capabilities()) == 3


def test_resource_and_io_bar(sysfs):
    dev = pci.find_device(ADDR, sysfs)
    assert dev.resource(0) == (0xC040, 32, 0x40101)
    bar = dev.open_bar(0)
    assert isinstance(bar, pci.IOBar)
    assert bar.read(0x12, 1) == 0x12
    assert bar.read(0x10, 2) == 0x1110
    assert bar.read(0x0, 4) == 0x03020100
    bar.write(0x12, 1, 0xAB)
    assert bar.read(0x12, 1) == 0xAB
    with pytest.raises(pci.PCIError, match="width must be 1, 2 or 4"):
        bar.read(0, 8)
    with pytest.raises(pci.PCIError, match="outside"):
        bar.read(31, 2)
    dev.close()


def test_memory_bar_reads_and_writes_each_width(sysfs):
    dev = pci.find_device(ADDR, sysfs)
    bar = dev.open_bar(4)
    assert isinstance(bar, pci.MemBar) and bar.size == 0x4000
    bar.write(0x14, 1, 0x0F)
    bar.write(0x16, 2, 0xBEEF)
    bar.write(0x18, 4, 0xDEADBEEF)
    bar.write(0x20, 8, 0x0123456789ABCDEF)
    assert (bar.read(0x14, 1), bar.read(0x16, 2), bar.read(0x18, 4), bar.read(0x20, 8)) == (
        0x0F, 0xBEEF, 0xDEADBEEF, 0x0123456789ABCDEF)
    with pytest.raises(pci.PCIError, match="unaligned"):
        bar.read(0x13, 4)
    dev.close()
    data = (dev.path / "resource4").read_bytes()
    assert data[0x18:0x1C] == struct.pack("<I", 0xDEADBEEF)


def test_bound_device_refuses_bar_access(sysfs):
    dev = pci.find_device("0000:00:06.0", sysfs)
    with pytest.raises(pci.PCIError, match="bound to driver virtio-pci; unbind"):
        dev.open_bar(0)


def test_unimplemented_bar(sysfs):
    with pytest.raises(pci.PCIError, match="BAR 2 is not implemented"):
        pci.find_device(ADDR, sysfs).open_bar(2)


def test_missing_sysfs(tmp_path):
    with pytest.raises(pci.PCIError, match="no sysfs"):
        pci.list_virtio_net(tmp_path)


def test_garbled_id_files_are_named(sysfs):
    (sysfs / "bus/pci/devices" / ADDR / "vendor").write_text("not hex\n")
    with pytest.raises(pci.PCIError, match=f"vendor of {ADDR}.*'not hex'"):
        pci.find_device(ADDR, sysfs).is_virtio_net()


@pytest.mark.parametrize("line", ["0x1000 0x2000\n", "zz zz zz\n", "\n"])
def test_a_garbled_resource_line_is_named(sysfs, line):
    (sysfs / "bus/pci/devices" / ADDR / "resource").write_text(line)
    with pytest.raises(pci.PCIError, match=f"resource of {ADDR}: BAR 0"):
        pci.find_device(ADDR, sysfs).resource(0)


def test_a_negative_bar_number_is_no_bar(sysfs):
    with pytest.raises(pci.PCIError, match="has no BAR -1"):
        pci.find_device(ADDR, sysfs).resource(-1)


def test_an_io_bar_that_reads_short_or_fails_is_a_pci_error(sysfs):
    dev = pci.find_device(ADDR, sysfs)
    (sysfs / "bus/pci/devices" / ADDR / "resource0").write_bytes(bytes(8))  # 32 announced
    bar = dev.open_bar(0)
    with pytest.raises(pci.PCIError, match=r"I/O BAR .*resource0: read of 2 bytes at 0x10 "
                                           r"returned 0"):
        bar.read(0x10, 2)
    os.close(bar.fd)
    bar.fd = os.open(os.devnull, os.O_WRONLY)  # any I/O error the kernel gives
    with pytest.raises(pci.PCIError, match=r"resource0: read at 0x0"):
        bar.read(0, 1)
    dev.close()
