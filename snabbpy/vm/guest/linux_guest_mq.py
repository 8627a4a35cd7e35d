"""Run inside a VM-lab guest whose virtio-net device has several queue
pairs (``--net vhost-user:SOCK,queues=2``): Linux's virtio_net is told to
use them all (what ``ethtool -L IF combined N`` does, by the same ioctl),
then UDP flows from many sockets leave on the transmit queues their flow
hashes pick, and the host's VhostUser (``queues: 2``, each pair's output
looped to its input) echoes them back. Prints one line of JSON; exits 0
when the device took N pairs and every datagram sent came back::

    snabbpy vm run --host-run ECHO.yaml --net vhost-user:SOCK,queues=2 -- \\
        python3 -m snabbpy.vm.guest.linux_guest_mq 0000:00:05.0 2
"""

from __future__ import annotations

import array
import fcntl
import glob
import json
import socket
import struct
import subprocess
import sys
import time

from snabbpy.vm.guest.linux_guest import CACHE, bind_virtio_net

SIOCETHTOOL = 0x8946
ETHTOOL_GCHANNELS, ETHTOOL_SCHANNELS = 0x3C, 0x3D
OURS, PEER = "10.11.0.1", "10.11.0.2"
FLOWS = 32


def channels(ifname: str, combined: int | None = None) -> dict[str, int]:
    """``struct ethtool_channels`` of ``ifname``; with ``combined``, sets
    that many combined channels first (``ethtool -L IF combined N``)."""
    fields = ("max_rx", "max_tx", "max_other", "max_combined",
              "rx_count", "tx_count", "other_count", "combined_count")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        def call(cmd: int, values: list[int]) -> list[int]:
            buf = array.array("I", [cmd, *values])
            ifreq = struct.pack("16sP", ifname.encode(), buf.buffer_info()[0])
            fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifreq)
            return list(buf[1:])
        now = call(ETHTOOL_GCHANNELS, [0] * 8)
        if combined is not None:
            now[7] = combined
            call(ETHTOOL_SCHANNELS, now)
            now = call(ETHTOOL_GCHANNELS, [0] * 8)
    return dict(zip(fields, now, strict=True))


def ip(*args: str) -> None:
    """busybox ip ..."""
    subprocess.run([f"{CACHE}/busybox", "ip", *args], check=True)


def counter(ifname: str, name: str) -> int:
    """/sys/class/net/IF/statistics/NAME."""
    with open(f"/sys/class/net/{ifname}/statistics/{name}") as f:
        return int(f.read())


def main() -> int:
    """Sets the channels, sends the flows, prints the result."""
    pci = sys.argv[1] if len(sys.argv) > 1 else "0000:00:05.0"
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    ifname = bind_virtio_net(pci)
    got = channels(ifname, pairs)
    # Without ARP a neighbour's address is our own MAC (the kernel's rule for
    # NOARP devices), so no peer need answer and the echoed frames are ours.
    ip("link", "set", ifname, "arp", "off", "up")
    ip("addr", "add", f"{OURS}/24", "dev", ifname)
    # No CPU-to-queue map: each packet's queue is its flow hash (skb_tx_hash).
    for path in glob.glob(f"/sys/class/net/{ifname}/queues/tx-*/xps_cpus"):
        try:
            with open(path, "w") as f:
                f.write("0")
        except OSError:
            pass
    tx0, rx0 = counter(ifname, "tx_packets"), counter(ifname, "rx_packets")
    socks = []
    for port in range(FLOWS):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((PEER, 40000 + port))  # a connected socket: a random flow hash of its own
        socks.append(s)
    for _ in range(count):
        for s in socks:
            s.send(b"snabbpy multiqueue")
        time.sleep(0.01)
    sent = FLOWS * count
    deadline = time.monotonic() + 20
    while counter(ifname, "rx_packets") - rx0 < sent and time.monotonic() < deadline:
        time.sleep(0.1)
    result = {"interface": ifname, "channels": got, "sent": sent,
              "tx_packets": counter(ifname, "tx_packets") - tx0,
              "rx_packets": counter(ifname, "rx_packets") - rx0}
    print("RESULT " + json.dumps(result))
    ok = got["combined_count"] == pairs and result["rx_packets"] >= sent
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
