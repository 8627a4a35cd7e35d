"""Build the guest's initramfs: busybox, a few modules and an /init script.

The archive is a newc cpio written here in Python (no cpio tool, no root:
device nodes are just header fields). The /init script mounts the host's root
read-only over 9p at /newroot, mounts the pseudo filesystems inside it,
reserves hugepages, then runs the user's command chrooted there and prints an
exit marker that the runner parses. Init itself stays in the initramfs so it
can power the guest off with busybox after the command ends.
"""

from __future__ import annotations

import shlex
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from snabbpy.vm.kernel import BOOT_MODULES, GuestAssets, load_order

START_MARKER = "SNABBPY-VM-START"
EXIT_MARKER = "SNABBPY-VM-EXIT"
ERROR_MARKER = "SNABBPY-VM-ERROR"
ROOT_TAG = "hostroot"
CMD_PATH = "/run/snabbpy/cmd.sh"

# Applets init uses; linked to busybox rather than `--install` at boot.
APPLETS = ("sh", "mount", "insmod", "mkdir", "chroot", "cp", "poweroff", "reboot", "sync", "cat")

# 9p options: a big msize and loose caching make Python's many stats and
# imports over TCG much faster; the guest is throwaway, so staleness is moot.
NINEP_OPTS = "trans=virtio,version=9p2000.L,msize=262144,cache=loose"


@dataclass(frozen=True)
class Share:
    """A host directory exported read-write over 9p at the same guest path."""

    tag: str
    path: str


@dataclass
class GuestCommand:
    """What the guest runs: argv, working directory, environment."""

    argv: Sequence[str]
    cwd: str = "/"
    env: Mapping[str, str] = field(default_factory=dict)
    hugepages: int = 0
    shares: Sequence[Share] = ()
    # Appended to the markers so output that merely mentions them is not
    # mistaken for them; the runner picks a random one per boot.
    token: str = ""

    def marker(self, base: str) -> str:
        """Return marker `base` as this boot's init prints it."""
        return f"{base}-{self.token}" if self.token else base


def command_script(cmd: GuestCommand) -> str:
    """Return the shell script run chrooted in the host root as root."""
    if not cmd.argv:
        raise ValueError("no command given to run in the guest")
    lines = ["#!/bin/sh", f"cd {shlex.quote(cmd.cwd)} || exit 125"]
    for key, value in sorted(cmd.env.items()):
        lines.append(f"export {key}={shlex.quote(value)}")
    lines.append("exec " + " ".join(shlex.quote(a) for a in cmd.argv))
    return "\n".join(lines) + "\n"


# virtio_pci would bind every virtio function, virtio-net ones included, even
# with virtio_net never loaded. Overriding the driver with a name no driver
# has, before virtio_pci loads, leaves them free for a userspace driver.
KEEP_NET_UNBOUND = """for d in /sys/bus/pci/devices/*; do
  if [ "$(cat $d/vendor)" = 0x1af4 ] && [ "$(cat $d/class)" = 0x020000 ]; then
    echo none > $d/driver_override
  fi
done"""


def init_script(modules: Iterable[str], cmd: GuestCommand) -> str:
    """Return /init: mount everything, run the command, report, power off."""
    loads = "\n".join(f"insmod /lib/modules/{m} || fail 'insmod {m}'" for m in modules)
    # mkdir first: a share under /tmp or /run lands on the guest's tmpfs.
    shares = "\n".join(
        f"mkdir -p /newroot{shlex.quote(s.path)}; "
        f"mount -t 9p -o {NINEP_OPTS} {shlex.quote(s.tag)} /newroot{shlex.quote(s.path)}"
        f" || fail 'mount share {s.tag} at {s.path}'"
        for s in cmd.shares
    )
    start, end, error = (cmd.marker(m) for m in (START_MARKER, EXIT_MARKER, ERROR_MARKER))
    return f"""#!/bin/sh
export PATH=/bin
fail() {{ echo "{error}: $1"; echo "{end} 125"; poweroff -f; reboot -f; }}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
{KEEP_NET_UNBOUND}
{loads}
mount -t 9p -o ro,{NINEP_OPTS} {ROOT_TAG} /newroot || fail 'mount 9p {ROOT_TAG}'
R=/newroot
mount -t proc proc $R/proc || fail 'mount /proc'
mount -t sysfs sysfs $R/sys || fail 'mount /sys'
mount -t devtmpfs devtmpfs $R/dev || fail 'mount /dev'
mkdir -p $R/dev/pts $R/dev/shm $R/dev/hugepages
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t tmpfs -o mode=1777 tmpfs $R/tmp || fail 'mount /tmp'
mount -t tmpfs -o mode=755 tmpfs $R/run || fail 'mount /run'
{shares}
echo {int(cmd.hugepages)} > /proc/sys/vm/nr_hugepages
mount -t hugetlbfs hugetlbfs $R/dev/hugepages || fail 'mount hugetlbfs'
mkdir -p $R/run/snabbpy
cp /cmd.sh $R{CMD_PATH}
echo {start}
chroot $R /bin/sh {CMD_PATH}
status=$?
echo "{end} $status"
sync
poweroff -f
reboot -f
"""


@dataclass(frozen=True)
class Entry:
    """One cpio member: a path, its mode (type and permissions), its content."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def build_entries(assets: GuestAssets, cmd: GuestCommand) -> list[Entry]:
    """Return the initramfs members for booting `cmd` with these assets."""
    modules = load_order(assets, BOOT_MODULES)
    dirs = ("bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules")
    entries = [Entry(d, stat.S_IFDIR | 0o755) for d in dirs]
    # The kernel opens /dev/console for init's stdio before anything mounts.
    entries.append(Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)))
    entries.append(Entry("bin/busybox", stat.S_IFREG | 0o755, assets.busybox.read_bytes()))
    entries += [Entry(f"bin/{a}", stat.S_IFLNK | 0o777, b"busybox") for a in APPLETS]
    entries += [
        Entry(f"lib/modules/{m.name}", stat.S_IFREG | 0o644, m.read_bytes()) for m in modules
    ]
    init = init_script([m.name for m in modules], cmd)
    entries.append(Entry("init", stat.S_IFREG | 0o755, init.encode()))
    entries.append(Entry("cmd.sh", stat.S_IFREG | 0o755, command_script(cmd).encode()))
    return entries


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _header(ino: int, entry: Entry, namesize: int) -> bytes:
    fields = (
        ino, entry.mode, 0, 0, 2 if stat.S_ISDIR(entry.mode) else 1, 0, len(entry.data),
        0, 0, entry.rdev[0], entry.rdev[1], namesize, 0,
    )
    return b"070701" + b"".join(b"%08X" % f for f in fields)


def write_cpio(entries: Iterable[Entry]) -> bytes:
    """Serialise entries as a newc cpio archive (what the kernel unpacks)."""
    out = bytearray()
    for ino, entry in enumerate([*entries, Entry("TRAILER!!!", 0)], start=1):
        name = entry.name.encode() + b"\0"
        out += _header(ino, entry, len(name)) + name
        out += _pad4(len(out))
        out += entry.data + _pad4(len(entry.data))
    return bytes(out)


def read_cpio(data: bytes) -> list[Entry]:
    """Parse a newc cpio archive back into entries (for tests and debugging)."""
    entries, pos = [], 0
    while True:
        if data[pos : pos + 6] != b"070701":
            raise ValueError(f"bad cpio magic at offset {pos}")
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmaj, rmin, namesize = fields[1], fields[6], fields[9], fields[10], fields[11]
        pos += 110
        name = data[pos : pos + namesize - 1].decode()
        pos += namesize + (-(110 + namesize) % 4)
        body = data[pos : pos + size]
        pos += size + (-size % 4)
        if name == "TRAILER!!!":
            return entries
        entries.append(Entry(name, mode, body, (rmaj, rmin)))


def build_initramfs(assets: GuestAssets, cmd: GuestCommand, path: Path) -> Path:
    """Write the initramfs for `cmd` to `path` and return it."""
    path.write_bytes(write_cpio(build_entries(assets, cmd)))
    return path
