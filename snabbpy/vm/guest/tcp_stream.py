"""Run inside a VM-lab guest: a TCP stream over Linux's own IP stack and
virtio_net, to a server on the host behind VhostUser (with TSO offered, the
guest hands the device 64 KiB frames to cut).

Binds virtio_net (``linux_guest.bind_virtio_net``), gives the interface
ADDRESS/24, connects to SERVER:PORT, sends SIZE bytes of
``stream_bytes(SIZE)``, closes its side and reads the server's answer (the
SHA-256 of what it received). Prints one line of JSON with the negotiated
virtio features; exits 0 when the answer matches. Used by
tests/test_vhost_tso_vm.py::

    snabbpy vm run --host-run GRAPH.yaml --net vhost-user:SOCK -- \\
        python3 -m snabbpy.vm.guest.tcp_stream 0000:00:05.0 ADDRESS SERVER PORT SIZE
"""

from __future__ import annotations

import glob
import hashlib
import json
import random
import socket
import subprocess
import sys
import time

from snabbpy.vm.guest.linux_guest import CACHE, bind_virtio_net


def stream_bytes(size: int) -> bytes:
    """The bytes the guest sends: the same on both ends of the test."""
    return random.Random(13).randbytes(size)


def connect(server: str, port: int, tries: int = 60) -> socket.socket:
    """Connects, retrying while the path comes up (ARP, the host's address)."""
    for _ in range(tries):
        try:
            return socket.create_connection((server, port), timeout=10)
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"cannot connect to {server}:{port}")


def main() -> int:
    """Binds, streams, checks the server's digest, prints the result."""
    pci, address, server, port, size = sys.argv[1:6]
    ifname = bind_virtio_net(pci)
    busybox = f"{CACHE}/busybox"
    subprocess.run([busybox, "ip", "addr", "add", f"{address}/24", "dev", ifname], check=True)
    subprocess.run([busybox, "ip", "link", "set", ifname, "up"], check=True)
    features = open(glob.glob(f"/sys/bus/pci/devices/{pci}/virtio*/features")[0]).read()
    data = stream_bytes(int(size))
    s = connect(server, int(port))
    s.settimeout(300)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while chunk := s.recv(4096):
        answer += chunk
    s.close()
    ok = answer.decode() == hashlib.sha256(data).hexdigest()
    print("RESULT " + json.dumps({"interface": ifname, "features": features.strip(),
                                  "sent": len(data), "digest_ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
