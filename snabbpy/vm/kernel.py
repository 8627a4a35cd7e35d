"""Find the guest kernel, its modules and busybox in the VM lab cache.

`scripts/setup-vm-lab.sh` fills the cache; this module only reads it and says
clearly what is missing. Module load order comes from each module's own
`.modinfo` (`depends=`), so no depmod output is needed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

SETUP_SCRIPT = "scripts/setup-vm-lab.sh"

# What the guest's init loads: the 9p root filesystem over virtio-pci.
# virtio_net is in the cache but deliberately absent here, so a guest's
# virtio-net-pci devices stay unbound for the userspace driver.
BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p")


class VMAssetsMissing(RuntimeError):
    """The VM lab cache lacks the kernel, a module or busybox."""


def cache_dir() -> Path:
    """Return the VM lab cache: $SNABBPY_VM_CACHE or ~/.cache/snabbpy/vm."""
    env = os.environ.get("SNABBPY_VM_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "snabbpy" / "vm"


@dataclass(frozen=True)
class GuestAssets:
    """Paths of everything a guest boot needs from the cache."""

    kernel: Path
    modules_dir: Path
    busybox: Path
    release: str

    def module(self, name: str) -> Path:
        """Return the path of module `name` (dashes and underscores alike)."""
        base = name.replace("-", "_")
        for candidate in (base, name):
            for suffix in (".ko", ".ko.xz", ".ko.zst"):
                path = self.modules_dir / (candidate + suffix)
                if path.exists():
                    return path
        raise VMAssetsMissing(
            f"kernel module {name!r} not found in {self.modules_dir}; "
            f"run {SETUP_SCRIPT} (or `snabbpy vm setup`)"
        )


def find_assets(root: Path | None = None) -> GuestAssets:
    """Locate the cached kernel, modules and busybox, or raise VMAssetsMissing."""
    root = root or cache_dir()
    # The uncompressed ELF boots through PVH: no BIOS boot path, no xz
    # decompression under TCG (about 3 s of a 7 s boot). vmlinuz still works.
    kernel = root / "vmlinux" if (root / "vmlinux").exists() else root / "vmlinuz"
    assets = GuestAssets(
        kernel=kernel,
        modules_dir=root / "modules",
        busybox=root / "busybox",
        release=_read_release(root),
    )
    missing = [p for p in (assets.kernel, assets.modules_dir, assets.busybox) if not p.exists()]
    if missing:
        names = ", ".join(str(p) for p in missing)
        raise VMAssetsMissing(
            f"VM lab assets missing ({names}); run {SETUP_SCRIPT} (or `snabbpy vm setup`)"
        )
    return assets


def _read_release(root: Path) -> str:
    try:
        return (root / "kernel-release").read_text().strip()
    except OSError:
        return "unknown"


_DEPENDS = re.compile(rb"(?:^|\0)depends=([^\0]*)\0")


def module_depends(path: Path) -> list[str]:
    """Return the modules `path` depends on, read from its .modinfo section."""
    data = path.read_bytes()
    if path.suffix in (".xz", ".zst"):
        raise VMAssetsMissing(f"compressed module {path} is not supported; use plain .ko files")
    match = _DEPENDS.search(data)
    if not match or not match.group(1):
        return []
    return [d.decode() for d in match.group(1).split(b",") if d]


def load_order(assets: GuestAssets, wanted: tuple[str, ...] | list[str]) -> list[Path]:
    """Return module files to insmod, dependencies first, each once."""
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str, stack: tuple[str, ...]) -> None:
        key = name.replace("-", "_")
        if key in seen:
            return
        if key in stack:
            raise VMAssetsMissing(f"module dependency cycle: {' -> '.join(stack + (key,))}")
        path = assets.module(key)
        for dep in module_depends(path):
            visit(dep, stack + (key,))
        seen.add(key)
        order.append(path)

    for name in wanted:
        visit(name, ())
    return order
