"""Choose KVM or TCG: probe KVM by really booting the guest kernel.

/dev/kvm existing is not enough. On some hosts (nested virtualization) a
KVM guest gets through the BIOS and then hangs in the kernel, so the probe
boots the lab kernel with an initramfs whose /init only powers off, and
kills it if it has not exited within a few seconds. The verdict is cached
per host boot (keyed by /proc/sys/kernel/random/boot_id), since a failing
probe costs its whole timeout.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
from pathlib import Path

from snabbpy.vm.initramfs import Entry, write_cpio
from snabbpy.vm.kernel import GuestAssets, cache_dir

PROBE_TIMEOUT = 6.0
PROBE_MARKER = "SNABBPY-KVM-OK"


def _probe_initramfs(assets: GuestAssets) -> bytes:
    init = f"#!/bin/busybox sh\n/bin/busybox echo {PROBE_MARKER}\n/bin/busybox poweroff -f\n"
    return write_cpio([
        Entry("bin", stat.S_IFDIR | 0o755),
        Entry("dev", stat.S_IFDIR | 0o755),
        Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        Entry("bin/busybox", stat.S_IFREG | 0o755, assets.busybox.read_bytes()),
        Entry("init", stat.S_IFREG | 0o755, init.encode()),
    ])


def probe_kvm(assets: GuestAssets, qemu: str = "qemu-system-x86_64",
              timeout: float = PROBE_TIMEOUT) -> bool:
    """Return True if a KVM guest boots our kernel to init within `timeout` s."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    with tempfile.TemporaryDirectory(prefix="snabbpy-kvm-probe-") as tmp:
        initrd = Path(tmp) / "probe.cpio"
        initrd.write_bytes(_probe_initramfs(assets))
        argv = [qemu, "-machine", "pc,accel=kvm", "-cpu", "host,-arch-capabilities",
                "-m", "256M", "-nodefaults", "-no-user-config", "-no-reboot",
                "-display", "none", "-serial", "stdio", "-kernel", str(assets.kernel),
                "-initrd", str(initrd), "-append", "console=ttyS0 quiet panic=-1 rdinit=/init"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            try:
                proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                pass  # stuck inside the kernel's KVM code; give up on it
            return False
        return PROBE_MARKER.encode() in out


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def cached_probe(assets: GuestAssets, qemu: str = "qemu-system-x86_64") -> bool:
    """probe_kvm, remembered in the cache until the host reboots."""
    record = cache_dir() / "kvm-probe"
    key = f"{_boot_id()} {assets.release}"
    try:
        saved_key, _, verdict = record.read_text().strip().rpartition(" ")
        if saved_key == key:
            return verdict == "kvm"
    except OSError:
        pass
    works = probe_kvm(assets, qemu)
    try:
        record.write_text(f"{key} {'kvm' if works else 'tcg'}\n")
    except OSError:
        pass  # a read-only cache only costs a probe next time
    return works


def choose_accel(mode: str, assets: GuestAssets, qemu: str = "qemu-system-x86_64") -> str:
    """Resolve "auto", "kvm" or "tcg" (or $SNABBPY_VM_ACCEL) to "kvm" or "tcg"."""
    mode = os.environ.get("SNABBPY_VM_ACCEL", mode) if mode == "auto" else mode
    if mode == "auto":
        return "kvm" if cached_probe(assets, qemu) else "tcg"
    if mode not in ("kvm", "tcg"):
        raise ValueError(f"accelerator must be auto, kvm or tcg, not {mode!r}")
    return mode
