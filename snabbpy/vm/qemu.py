"""Build the QEMU command line for a lab guest, and pick KVM or TCG.

Fixed PCI layout on the `pc` machine's bus pci.0 (documented in
docs/vm-lab.md, relied on by guest programs):

    00:03.0  virtio-9p-pci, the host root (mount_tag hostroot)
    00:05.0  first --net virtio-net-pci, then 00:06.0 ... up to 00:0f.0
    00:10.0  first --share virtio-9p-pci, then 00:11.0 ...

When a backend maps guest memory (vhost-user), RAM is a shared memfd so the
backend can mmap the file descriptors QEMU passes it.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from snabbpy.vm.initramfs import ROOT_TAG, Share
from snabbpy.vm.netspec import NetSpec, qemu_args

QEMU = "qemu-system-x86_64"
ROOT_SLOT = 0x03
SHARE_FIRST_SLOT = 0x10
# `quiet loglevel=1` keeps kernel chatter out of the command's output;
# panic=-1 with -no-reboot turns any guest panic into a QEMU exit, never a hang.
KERNEL_CMDLINE = "console=ttyS0 quiet loglevel=1 panic=-1 rdinit=/init mitigations=off"
VERBOSE_CMDLINE = "console=ttyS0 loglevel=7 panic=-1 rdinit=/init mitigations=off"


@dataclass
class VMConfig:
    """Everything needed to start one guest."""

    kernel: Path
    initrd: Path
    memory_mib: int = 1024
    cpus: int = 1
    accel: str = "tcg"  # "kvm" or "tcg"; accel.choose_accel resolves "auto"
    nets: Sequence[NetSpec] = ()
    shares: Sequence[Share] = ()
    root: str = "/"
    shared_memory: bool | None = None  # None: only when a net needs it
    verbose: bool = False  # let the kernel print its whole boot log
    extra_args: Sequence[str] = field(default_factory=list)


def qemu_binary() -> str:
    """Return the path of qemu-system-x86_64, or raise naming the setup script."""
    path = shutil.which(QEMU)
    if not path:
        raise FileNotFoundError(f"{QEMU} not found; run scripts/setup-vm-lab.sh")
    return path


def memory_args(cfg: VMConfig) -> list[str]:
    """Return -m and, for vhost-user, the shared memfd backend and NUMA node."""
    shared = cfg.shared_memory
    if shared is None:
        shared = any(n.needs_shared_memory for n in cfg.nets)
    args = ["-m", f"{cfg.memory_mib}M"]
    if shared:
        args += [
            "-object", f"memory-backend-memfd,id=mem,size={cfg.memory_mib}M,share=on",
            "-numa", "node,memdev=mem",
        ]
    return args


def fs_args(cfg: VMConfig) -> list[str]:
    """Return the 9p exports: the host root read-only, each share read-write."""
    # multidevs=remap: the export crosses mount points; remapping inode numbers
    # keeps them unique in the guest instead of warning and risking clashes.
    common = "security_model=none,multidevs=remap"
    args = [
        "-fsdev", f"local,id=fsroot,path={cfg.root},readonly=on,{common}",
        "-device",
        f"virtio-9p-pci,fsdev=fsroot,mount_tag={ROOT_TAG},bus=pci.0,addr=0x{ROOT_SLOT:x}",
    ]
    for i, share in enumerate(cfg.shares):
        args += [
            "-fsdev", f"local,id=fs{i},path={share.path},{common}",
            "-device", f"virtio-9p-pci,fsdev=fs{i},mount_tag={share.tag},"
            f"bus=pci.0,addr=0x{SHARE_FIRST_SLOT + i:x}",
        ]
    return args


def build_command(cfg: VMConfig, qemu: str = QEMU) -> list[str]:
    """Return the full QEMU argv for `cfg` (the serial console on stdio)."""
    # Plain `-cpu host` (or max) aborts under nested KVM when the outer
    # hypervisor rejects the ARCH_CAPABILITIES MSR; the guest never needs it.
    cpu = "host,-arch-capabilities" if cfg.accel == "kvm" else "max"
    args = [
        qemu, "-machine", f"pc,accel={cfg.accel}", "-cpu", cpu, "-smp", str(cfg.cpus),
        "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
        "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
        "-kernel", str(cfg.kernel), "-initrd", str(cfg.initrd),
        "-append", VERBOSE_CMDLINE if cfg.verbose else KERNEL_CMDLINE,
    ]
    args += memory_args(cfg) + fs_args(cfg)
    for i, net in enumerate(cfg.nets):
        args += qemu_args(net, i)
    return args + list(cfg.extra_args)
