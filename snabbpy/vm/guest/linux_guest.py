"""Run inside a VM-lab guest: Linux's own virtio_net driver against the
host's VhostUser, which echoes every frame back (vhost.output -> vhost.input).

Binds virtio_net to the device (with MSI off, see ``bind_virtio_net``),
sets the MTU to 9000, sends numbered
frames of several sizes through a raw packet socket and checks that each
comes back intact. Prints one line of JSON; exits 0 when every frame came
back. Used by tests/test_vhost_linux_vm.py::

    snabbpy vm run --host-run ECHO.yaml --net vhost-user:SOCK -- \\
        python3 -m snabbpy.vm.guest.linux_guest 0000:00:05.0
"""

from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import sys
import time

ETHERTYPE = 0x88B5  # IEEE "local experimental": nothing else in the guest uses it
PACKET_OUTGOING = 4
CACHE = os.environ.get("SNABBPY_VM_CACHE", "/root/.cache/snabbpy/vm")


def bind_virtio_net(pci: str) -> str:
    """Gives the device to Linux's virtio_net; returns the interface name."""
    if not os.environ.get("SNABBPY_VHOST_MSI"):
        # QEMU 7.2 under TCG (Debian 12) segfaults when a vhost-user
        # virtio-net device is started with MSI-X vectors, whatever the
        # backend (DPDK's net_vhost too); legacy INTx interrupts work.
        with open(f"/sys/bus/pci/devices/{pci}/msi_bus", "w") as f:
            f.write("0")
    with open(f"/sys/bus/pci/devices/{pci}/driver_override", "w") as f:
        f.write("\n")
    for module in ("failover", "net_failover", "virtio_net"):
        subprocess.run([f"{CACHE}/busybox", "insmod", f"{CACHE}/modules/{module}.ko"],
                       stderr=subprocess.DEVNULL, check=False)
    with open("/sys/bus/pci/drivers_probe", "w") as f:
        f.write(pci)
    for _ in range(100):
        names = glob.glob(f"/sys/bus/pci/devices/{pci}/virtio*/net/*")
        if names:
            return os.path.basename(names[0])
        time.sleep(0.1)
    raise RuntimeError(f"no network interface appeared for {pci}")


def frame(mac: bytes, seq: int, size: int) -> bytes:
    """A broadcast frame of ``size`` bytes whose payload is ``seq`` repeated."""
    head = b"\xff" * 6 + mac + ETHERTYPE.to_bytes(2, "big")
    body = seq.to_bytes(4, "big") * ((size - len(head)) // 4 + 1)
    return head + body[:size - len(head)]


def echo(sock: socket.socket, mac: bytes, size: int, count: int) -> dict:
    """Sends ``count`` frames one at a time; counts those that came back."""
    back = corrupt = 0
    for seq in range(count):
        sent = frame(mac, seq, size)
        sock.send(sent)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                data, addr = sock.recvfrom(16384)
            except TimeoutError:
                continue
            if addr[2] == PACKET_OUTGOING:
                continue  # our own transmission, seen by the packet socket
            back += 1
            corrupt += data != sent
            break
    return {"size": size, "sent": count, "back": back, "corrupt": corrupt}


def main() -> int:
    """Binds, echoes frames of 60, 1500 and 9000 bytes, prints the result."""
    pci = sys.argv[1] if len(sys.argv) > 1 else "0000:00:05.0"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    ifname = bind_virtio_net(pci)
    subprocess.run([f"{CACHE}/busybox", "ip", "link", "set", ifname, "mtu", "9000", "up"],
                   check=True)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
    sock.bind((ifname, ETHERTYPE))
    sock.settimeout(0.5)
    mac = bytes.fromhex(open(f"/sys/class/net/{ifname}/address").read().strip().replace(":", ""))
    results = [echo(sock, mac, size, count) for size in (60, 1500, 9000)]
    stats = {k: int(open(f"/sys/class/net/{ifname}/statistics/{k}").read())
             for k in ("tx_packets", "rx_packets", "rx_errors", "rx_dropped")}
    print("RESULT " + json.dumps({"interface": ifname, "echo": results, "stats": stats}))
    return 0 if all(r["back"] == r["sent"] and not r["corrupt"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
