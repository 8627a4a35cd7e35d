#!/bin/sh
# Prepare the snabbpy VM lab (see docs/vm-lab.md). Idempotent, non-interactive.
#
# - installs QEMU and a static busybox (the guest's init) with apt;
# - downloads Debian's kernel package WITHOUT installing it (it would replace
#   nothing on a container host, but a VM lab must never touch the host's boot)
#   and extracts vmlinuz plus the modules the guest needs into the cache:
#     $SNABBPY_VM_CACHE (default ~/.cache/snabbpy/vm)/
#       vmlinuz                   the kernel as Debian ships it (bzImage, xz)
#       vmlinux                   the same kernel uncompressed (ELF): QEMU boots
#                                 it through its PVH entry, skipping the BIOS
#                                 boot path and the xz decompression, which
#                                 halves a guest's boot time under TCG
#       modules/<name>.ko         9p, virtio-pci, netfs ... and virtio_net
#                                 (load order comes from each module's own
#                                 .modinfo depends=, so no depmod is needed)
#       kernel-release            e.g. 6.1.0-56-amd64
#       busybox                   copy of busybox-static's binary
#
# virtio_net is a module in Debian's config and is extracted but never loaded
# by the guest's init, so virtio-net-pci devices stay unbound for vguest.
set -eu

CACHE="${SNABBPY_VM_CACHE:-${HOME:-/root}/.cache/snabbpy/vm}"
# Modules the guest loads, their dependencies, and modules we only ship for later use (virtio_net, uio_pci_generic).
MODULES="9p 9pnet 9pnet_virtio netfs fscache virtio virtio_ring virtio_pci
virtio_pci_legacy_dev virtio_pci_modern_dev virtio_net net_failover failover
uio uio_pci_generic"

say() { echo "setup-vm-lab: $*"; }

need_root() {
    if [ "$(id -u)" != 0 ]; then
        say "must run as root to install packages (try: sudo $0)" >&2
        exit 1
    fi
}

install_packages() {
    missing=""
    for pkg in qemu-system-x86 qemu-utils busybox-static; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" \
            || missing="$missing $pkg"
    done
    if [ -z "$missing" ]; then
        say "packages already installed: qemu-system-x86 qemu-utils busybox-static"
        return
    fi
    need_root
    say "installing:$missing"
    # Other engineers install at the same time: wait for the dpkg lock.
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        -o DPkg::Lock::Timeout=900 $missing
}

kernel_package() {
    # linux-image-amd64 is a metapackage; its Depends names the real image.
    apt-cache depends linux-image-amd64 2>/dev/null \
        | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1
}

extract_kernel() {
    pkg="$(kernel_package)"
    if [ -z "$pkg" ]; then
        say "cannot resolve linux-image-amd64 (run apt-get update?)" >&2
        exit 1
    fi
    release="${pkg#linux-image-}"
    if [ -f "$CACHE/vmlinuz" ] && [ "$(cat "$CACHE/kernel-release" 2>/dev/null)" = "$release" ]; then
        say "kernel $release already in $CACHE"
        return
    fi
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    say "downloading $pkg (not installing it)"
    # apt's sandbox user cannot write to a root-owned mktemp dir; let it try.
    chmod 0777 "$work"
    (cd "$work" && apt-get download "$pkg" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
    deb="$(ls "$work"/*.deb 2>/dev/null | head -n1)"
    [ -n "$deb" ] || { say "apt-get download $pkg failed" >&2; exit 1; }
    dpkg-deb -x "$deb" "$work/x"
    moddir="$work/x/lib/modules/$release"
    mkdir -p "$CACHE"
    rm -rf "$CACHE/modules"
    mkdir -p "$CACHE/modules"
    cp "$work/x/boot/vmlinuz-$release" "$CACHE/vmlinuz"
    cp "$work/x/boot/config-$release" "$CACHE/config"
    for m in $MODULES; do
        f="$(find "$moddir/kernel" -name "$m.ko*" | head -n1)"
        if [ -z "$f" ]; then
            say "module $m is not a module in $release (built-in?)"
            continue
        fi
        cp "$f" "$CACHE/modules/"
    done
    echo "$release" > "$CACHE/kernel-release"
    say "extracted vmlinuz and $(find "$CACHE/modules" -name '*.ko*' | wc -l) modules of $release into $CACHE"
}

extract_vmlinux() {
    if [ -f "$CACHE/vmlinux" ] && [ "$CACHE/vmlinux" -nt "$CACHE/vmlinuz" ]; then
        say "uncompressed vmlinux already in $CACHE"
        return
    fi
    python3 - "$CACHE/vmlinuz" "$CACHE/vmlinux.tmp" <<'PY'
import lzma, sys
data = open(sys.argv[1], "rb").read()
start = data.find(b"\xfd7zXZ\x00")  # Debian builds with CONFIG_KERNEL_XZ
if start < 0:
    sys.exit("no xz payload in " + sys.argv[1])
elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[start:])
if not elf.startswith(b"\x7fELF"):
    sys.exit("xz payload of " + sys.argv[1] + " is not an ELF kernel")
open(sys.argv[2], "wb").write(elf)
PY
    mv "$CACHE/vmlinux.tmp" "$CACHE/vmlinux"
    say "extracted uncompressed vmlinux (PVH boot) into $CACHE"
}

copy_busybox() {
    bb="/bin/busybox"
    [ -x "$bb" ] || { say "busybox-static missing: $bb" >&2; exit 1; }
    # ldd fails on a static binary: success means a dynamic one slipped in.
    if ldd "$bb" >/dev/null 2>&1; then
        say "$bb is dynamically linked; install busybox-static" >&2
        exit 1
    fi
    if cmp -s "$bb" "$CACHE/busybox"; then
        say "busybox already in $CACHE"
    else
        cp "$bb" "$CACHE/busybox"
        say "copied static busybox into $CACHE"
    fi
}

install_packages
extract_kernel
extract_vmlinux
copy_busybox
say "ready: try  python -m snabbpy.vm.cli run -- uname -a"
