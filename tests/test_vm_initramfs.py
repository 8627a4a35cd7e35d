"""The guest initramfs: module order, the /init script, the cpio archive."""

import stat

import pytest

from snabbpy.vm.initramfs import (
    Entry,
    GuestCommand,
    Share,
    build_initramfs,
    command_script,
    read_cpio,
    write_cpio,
)
from snabbpy.vm.kernel import GuestAssets, VMAssetsMissing, find_assets, load_order


def fake_module(path, depends=""):
    # Just enough of a .ko: the .modinfo strings the loader reads.
    path.write_bytes(b"\x7fELF...\0license=GPL\0depends=" + depends.encode() + b"\0name=x\0")


@pytest.fixture
def assets(tmp_path):
    mods = tmp_path / "modules"
    mods.mkdir()
    deps = {
        "virtio_ring": "", "virtio": "virtio_ring", "virtio_pci_modern_dev": "",
        "virtio_pci_legacy_dev": "",
        "virtio_pci": "virtio_ring,virtio_pci_modern_dev,virtio_pci_legacy_dev,virtio",
        "9pnet": "", "9pnet_virtio": "virtio,9pnet,virtio_ring", "netfs": "",
        "fscache": "netfs", "9p": "9pnet,fscache,netfs", "virtio_net": "virtio_ring,virtio",
    }
    for name, dep in deps.items():
        fake_module(mods / f"{name}.ko", dep)
    (tmp_path / "vmlinuz").write_bytes(b"kernel")
    (tmp_path / "busybox").write_bytes(b"\x7fELF busybox")
    (tmp_path / "kernel-release").write_text("6.1.0-test-amd64\n")
    return find_assets(tmp_path)


def test_load_order_puts_dependencies_first_and_skips_virtio_net(assets):
    names = [p.stem for p in load_order(assets, ("virtio_pci", "9pnet_virtio", "9p"))]
    assert len(names) == len(set(names))
    assert "virtio_net" not in names
    for before, after in [("virtio_ring", "virtio"), ("virtio", "virtio_pci"),
                          ("9pnet", "9pnet_virtio"), ("netfs", "fscache"), ("fscache", "9p")]:
        assert names.index(before) < names.index(after)


def test_missing_assets_name_the_setup_script(tmp_path):
    with pytest.raises(VMAssetsMissing, match="scripts/setup-vm-lab.sh"):
        find_assets(tmp_path)


def test_missing_module_names_the_setup_script(assets):
    with pytest.raises(VMAssetsMissing, match="'e1000'.*setup-vm-lab.sh"):
        load_order(assets, ["e1000"])


def test_cpio_round_trip_keeps_names_modes_data_and_devices():
    entries = [
        Entry("bin", stat.S_IFDIR | 0o755),
        Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        Entry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"),
        Entry("init", stat.S_IFREG | 0o755, b"#!/bin/sh\necho odd length\n"),
    ]
    data = write_cpio(entries)
    assert data.startswith(b"070701") and len(data) % 4 == 0
    assert read_cpio(data) == entries


def test_initramfs_holds_busybox_modules_init_and_command(assets, tmp_path):
    cmd = GuestCommand(argv=["python3", "-c", "print('hi there')"], cwd="/work/main",
                       env={"PATH": "/usr/bin:/bin"}, hugepages=32,
                       shares=[Share("share0", "/work/out")], token="abcd")
    path = build_initramfs(assets, cmd, tmp_path / "initrd.cpio")
    files = {e.name: e for e in read_cpio(path.read_bytes())}
    assert files["bin/busybox"].data == b"\x7fELF busybox"
    assert files["bin/sh"].data == b"busybox" and stat.S_ISLNK(files["bin/sh"].mode)
    assert stat.S_ISCHR(files["dev/console"].mode) and files["dev/console"].rdev == (5, 1)
    assert "lib/modules/9p.ko" in files and "lib/modules/virtio_net.ko" not in files
    init = files["init"].data.decode()
    assert files["init"].mode & 0o111
    assert init.index("driver_override") < init.index("insmod /lib/modules/virtio_pci.ko")
    assert "mount -t 9p -o ro,trans=virtio" in init and "hostroot /newroot" in init
    assert "echo 32 > /proc/sys/vm/nr_hugepages" in init
    assert "mount -t hugetlbfs hugetlbfs $R/dev/hugepages" in init
    assert "share0 /newroot/work/out" in init
    assert "echo SNABBPY-VM-START-abcd" in init
    assert 'echo "SNABBPY-VM-EXIT-abcd $status"' in init
    assert files["cmd.sh"].data.decode() == command_script(cmd)


def test_command_script_quotes_arguments_and_sets_cwd_and_env():
    script = command_script(GuestCommand(argv=["echo", "a b", "$HOME"], cwd="/my dir",
                                         env={"X": "it's"}))
    assert "cd '/my dir' || exit 125" in script
    assert "export X='it'\"'\"'s'" in script
    assert script.endswith("exec echo 'a b' '$HOME'\n")


def test_empty_command_is_refused():
    with pytest.raises(ValueError, match="no command"):
        command_script(GuestCommand(argv=[]))


def test_assets_find_modules_by_dashed_name(assets: GuestAssets):
    assert assets.module("virtio-pci").name == "virtio_pci.ko"


def test_uncompressed_vmlinux_is_preferred_for_pvh_boot(assets):
    (assets.kernel.parent / "vmlinux").write_bytes(b"\x7fELF")
    assert find_assets(assets.kernel.parent).kernel.name == "vmlinux"
    assert assets.kernel.name == "vmlinuz"
