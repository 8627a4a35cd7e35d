"""A Linux guest's TCP stream through VhostUser with checksum_offload and
tso: the guest's virtio_net negotiates CSUM and HOST_TSO4 and hands over
64 KiB frames; VhostUser cuts them; the host kernel (behind a Tap) gets 1 MB
intact, and a capture of what left VhostUser shows only MTU-sized segments
with correct checksums (our parser and tcpdump's). Needs the VM lab, root
and scripts/install-netutils.sh."""

import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import need_root, need_vm_lab, wait_for

from snabbpy.testing.gso import checksums_ok
from snabbpy.vm.guest.tcp_stream import stream_bytes

pytestmark = [pytest.mark.vm, pytest.mark.interop, pytest.mark.root]
REPO = Path(__file__).resolve().parents[1]
HOST, GUEST, SIZE = "10.213.0.1", "10.213.0.2", 1 << 20
GRAPH = """
apps:
  vhost: {{class: vhost.VhostUser, config: {{socket_path: {sock}, checksum_offload: true,
                                            tso: true}}}}
  tee: {{class: basic.Tee}}
  tap: {{class: tap.Tap, config: {{name: {tap}, mtu: 1500}}}}
  pcap: {{class: pcap.PcapWriter, config: {{path: {pcap}}}}}
links:
  - vhost.output -> tee.input
  - tee.tap -> tap.input
  - tee.pcap -> pcap.input
  - tap.output -> vhost.input
"""


def serve_once(listener: socket.socket, got: list) -> None:
    """Accepts one connection, reads to its end, answers the SHA-256."""
    conn, _ = listener.accept()
    with conn:
        data = bytearray()
        while chunk := conn.recv(65536):
            data += chunk
        got.append(bytes(data))
        conn.sendall(hashlib.sha256(data).hexdigest().encode())


def pcap_frames(path: Path) -> list[bytes]:
    """The frames of a classic little-endian pcap file."""
    raw = path.read_bytes()
    frames, at = [], 24
    while at + 16 <= len(raw):
        n = int.from_bytes(raw[at + 8:at + 12], "little")
        frames.append(raw[at + 16:at + 16 + n])
        at += 16 + n
    return frames


def test_a_linux_guests_tcp_stream_is_cut_into_valid_mss_segments(tmp_path):
    need_vm_lab()
    need_root("ip", "tcpdump")
    tap = f"sbtso{os.getpid() % 10000}"
    sock, pcap, graph = tmp_path / "vhost.sock", tmp_path / "out.pcap", tmp_path / "g.yaml"
    graph.write_text(GRAPH.format(sock=sock, tap=tap, pcap=pcap))
    listener = socket.create_server(("0.0.0.0", 0))
    listener.settimeout(550)
    port, got = listener.getsockname()[1], []
    server = threading.Thread(target=serve_once, args=(listener, got), daemon=True)
    server.start()
    argv = [sys.executable, "-m", "snabbpy.vm.cli", "run", "--timeout", "500",
            "--host-run", str(graph), "--net", f"vhost-user:{sock}", "--",
            "python3", "-m", "snabbpy.vm.guest.tcp_stream", "0000:00:05.0", GUEST, HOST,
            str(port), str(SIZE)]
    vm = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    try:
        wait_for(lambda: subprocess.run(["ip", "link", "show", tap], capture_output=True)
                 .returncode == 0 or vm.poll() is not None, "the tap", timeout=300)
        subprocess.run(["ip", "addr", "add", f"{HOST}/24", "dev", tap], check=True)
        out, err = vm.communicate(timeout=600)
    finally:
        if vm.poll() is None:
            vm.kill()
            vm.communicate()
        listener.close()
    result = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert result and '"digest_ok": true' in result[-1], f"{out[-2000:]}\n{err[-3000:]}"
    assert got == [stream_bytes(SIZE)]
    features = result[-1].split('"features": "')[1][:16]
    assert features[0] == features[11] == "1", features  # CSUM, HOST_TSO4 negotiated
    counters = {k: int(v.replace(",", "")) for k, v in re.findall(r"\b(txq_\w+): ([\d,]+)", err)}
    assert counters["txq_gso_frames"] > 0, counters  # the guest did hand over big frames
    assert all(v == 0 for k, v in counters.items() if k.startswith("txq_bad_")), counters
    # What left VhostUser: the guest's data segments, none above the MTU, all valid.
    segments = [f for f in pcap_frames(pcap)
                if f[12:14] == b"\x08\x00" and f[23] == 6 and f[26:30] == socket.inet_aton(GUEST)]
    assert sum(len(f) - 14 - 20 - (f[46] >> 4) * 4 for f in segments) >= SIZE
    assert max(len(f) for f in segments) <= 1514
    assert all(checksums_ok(f) for f in segments)
    dump = subprocess.run(["tcpdump", "-r", str(pcap), "-nn", "-vv", "tcp and src", GUEST],
                          capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    assert dump.stdout.count("(correct)") >= len(segments) and "incorrect" not in dump.stdout
