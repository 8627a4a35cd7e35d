"""vguest on a real virtio-net-pci device inside a QEMU guest (the VM lab).

The guest runs ``snabbpy selftest apps.vguest --pci 0000:00:05.0``: it
sends N numbered frames and expects M from the host. The host side is
1. a snabbpy graph under ``snabbpy run``: ``VhostUser -> Responder ->
   PcapWriter`` and ``Responder -> VhostUser`` (M frames once the guest is
   up), with QEMU as the vhost-user frontend in client or server mode; the
   capture must hold exactly the guest's frames, read back by tcpdump;
2. QEMU's UDP socket netdev, the note's own setup: the guest's frames are
   datagrams on loopback, seen by tcpdump and by a Python socket, which
   also sends the M frames in; and a tap device (split and packed rings,
   frames of 60..9000 bytes), seen by a raw socket and the tap's counters;
3. a long run: 100,000 frames each way through 1024-entry queues.
Needs scripts/setup-vm-lab.sh and scripts/install-netutils.sh (tcpdump).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import need_vm_lab

from snabbpy.testing.frames import cycled, frame

pytestmark = pytest.mark.vm
REPO = Path(__file__).resolve().parents[1]
SNABBPY = [sys.executable, "-c", "import sys; from snabbpy.cli import main; sys.exit(main())"]
HANG_GUARD = 400  # seconds; only so a broken guest cannot hang the suite
GUEST_NIC = "0000:00:05.0"
SO_RCVBUFFORCE = 33  # Linux; as root it may exceed net.core.rmem_max


@pytest.fixture(autouse=True)
def lab_ready() -> None:
    need_vm_lab("tcpdump")


def guest_selftest(net: str, packets: int, expect_rx: int, pci_mode: str = "auto",
                   extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """Boots a guest with ``net`` at 00:05.0 running the PCI selftest
    (``extra``: more selftest options)."""
    argv = [*SNABBPY, "vm", "run", "--timeout", str(HANG_GUARD - 50), "--net", net, "--",
            *SNABBPY, "selftest", "apps.vguest", "--pci", GUEST_NIC, "--packets", str(packets),
            "--expect-rx", str(expect_rx), "--timeout", "240", "--pci-mode", pci_mode, *extra]
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(proc: subprocess.Popen) -> str:
    """Waits for the guest; returns what it printed."""
    try:
        out, _ = proc.communicate(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def tcpdump_frames(path: Path, *options: str) -> list[bytes]:
    """The frames (or, for UDP on loopback, whole packets) of a capture, as
    tcpdump reads them back."""
    text = subprocess.run(["tcpdump", "-r", str(path), "-nn", "-xx", *options],
                          capture_output=True, text=True, check=True).stdout
    frames: list[bytes] = []
    for line in text.splitlines():
        if not line.startswith("\t0x"):
            frames.append(b"")
            continue
        frames[-1] += bytes.fromhex("".join(line.split(":", 1)[1].split()))
    return frames


# -- 1. a snabbpy graph with VhostUser on the host ---------------------------

HOST_GRAPH = """\
apps:
  vhost: {{class: vhost.VhostUser, config: {{socket_path: "{sock}", is_server: {server}}}}}
  answer: {{class: "snabbpy.vm.hostapps:Responder", config: {{count: {count}}}}}
  pcap: {{class: pcap.PcapWriter, config: {{path: "{pcap}"}}}}
links:
  - vhost.output -> answer.input
  - answer.output -> pcap.input
  - answer.reply -> vhost.input
"""


def start_host(tmp: Path, sock: Path, is_server: bool, count: int) -> subprocess.Popen:
    graph = tmp / "host.yaml"
    graph.write_text(HOST_GRAPH.format(sock=sock, server=str(is_server).lower(), count=count,
                                       pcap=tmp / "from-guest.pcap"))
    return subprocess.Popen([*SNABBPY, "run", str(graph), "--report-interval", "0",
                             "--report-json", str(tmp / "host.json")],
                            stdout=open(tmp / "host.log", "w"), stderr=subprocess.STDOUT)


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, f"no socket at {path}"
        time.sleep(0.05)


def stop_host(host: subprocess.Popen, tmp: Path) -> dict:
    host.send_signal(signal.SIGTERM)
    assert host.wait(60) == 0, (tmp / "host.log").read_text()[-3000:]
    return json.loads((tmp / "host.json").read_text())["apps"]


def run_with_vhost_user(tmp: Path, mode: str, qemu_is_server: bool, packets: int,
                        expect_rx: int, pci_mode: str = "auto",
                        extra: str = "") -> tuple[str, dict]:
    """Host graph and guest, in the order the socket's server needs;
    ``extra``: more --net options."""
    sock = tmp / "vm.sock"
    net = f"vhost-user:{sock}" + (",server" if qemu_is_server else "") + f",mode={mode},queue=1024"
    net += extra
    if qemu_is_server:
        guest = guest_selftest(net, packets, expect_rx, pci_mode)
        wait_for(sock, guest)
        host = start_host(tmp, sock, False, expect_rx)
    else:
        host = start_host(tmp, sock, True, expect_rx)
        wait_for(sock, host)
        guest = guest_selftest(net, packets, expect_rx, pci_mode)
    try:
        out = finish(guest)
    finally:
        apps = stop_host(host, tmp)
    assert guest.returncode == 0, out
    return out, apps


@pytest.mark.parametrize("mode, qemu_is_server, pci_mode, transport", [
    ("legacy", False, "auto", "legacy"), ("modern", True, "auto", "modern"),
    ("transitional", False, "auto", "modern"), ("transitional", True, "legacy", "legacy")])
def test_guest_and_vhost_user_host_account_for_every_packet(
        tmp_path: Path, mode: str, qemu_is_server: bool, pci_mode: str, transport: str) -> None:
    out, apps = run_with_vhost_user(tmp_path, mode, qemu_is_server, 500, 700, pci_mode)
    assert f"pci {GUEST_NIC} {transport}, rx queue 1024, tx queue 1024" in out
    assert "sent 500/500" in out and "received 700/700" in out and ": ok" in out
    assert apps["answer"]["from_guest"] == 500 and apps["answer"]["to_guest"] == 700
    assert apps["vhost"]["rxq_drop_not_ready"] == 0
    assert tcpdump_frames(tmp_path / "from-guest.pcap") == [frame(i, 60) for i in range(500)]


def test_vguest_packed_ring_on_pci_against_vhost_user(tmp_path: Path) -> None:
    """A modern device with packed=on: vguest's packed driver ring on PCI,
    through QEMU, against VhostUser's packed device ring."""
    out, apps = run_with_vhost_user(tmp_path, "modern", False, 500, 700, extra=",packed=on")
    assert ", packed rings" in out, out
    assert "sent 500/500" in out and "received 700/700" in out and ": ok" in out
    assert apps["answer"]["from_guest"] == 500 and apps["answer"]["to_guest"] == 700
    assert tcpdump_frames(tmp_path / "from-guest.pcap") == [frame(i, 60) for i in range(500)]


def test_long_run_100k_each_way_through_1024_entry_queues(tmp_path: Path) -> None:
    n = 100_000
    out, apps = run_with_vhost_user(tmp_path, "legacy", False, n, n)
    assert "rx queue 1024, tx queue 1024" in out
    assert f"sent {n:,}/{n:,}" in out and f"received {n:,}/{n:,}" in out and ": ok" in out
    assert apps["vhost"]["connects"] == 1  # QEMU stayed up: one connection, all along
    assert apps["answer"]["from_guest"] == n and apps["answer"]["to_guest"] == n
    assert apps["pcap"]["packets"] == n
    print(out)  # the rates, for the record (pytest -s)


# -- 2. the note's setup: QEMU's own socket netdev ---------------------------

def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def capture_loopback(path: Path, port: int) -> subprocess.Popen:
    """tcpdump on lo for UDP to ``port``, once it is listening."""
    proc = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-w", str(path), "udp", "dst", "port",
                             str(port)], stderr=subprocess.PIPE, text=True)
    assert "listening on" in proc.stderr.readline()
    return proc


def send_paced(sock: socket.socket, address: tuple[str, int], count: int, pps: float) -> None:
    """The guest's M frames at ``pps``: a UDP sender has no back-pressure,
    and QEMU drops what arrives while the guest has no free buffer."""
    start = time.monotonic()
    for seq in range(count):
        delay = start + seq / pps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sock.sendto(frame(seq, 60), address)


@pytest.mark.parametrize("mode", ["legacy", "modern", "modern,packed=on"])
def test_udp_socket_netdev_carries_both_directions(tmp_path: Path, mode: str) -> None:
    n, m = 1000, 1000
    host_port, qemu_port = free_udp_port(), free_udp_port()
    capture = capture_loopback(tmp_path / "lo.pcap", host_port)
    host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)  # the guest bursts
    host.bind(("127.0.0.1", host_port))
    host.settimeout(0.2)
    to_guest = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    guest = guest_selftest(f"socket:udp={host_port},localaddr={qemu_port},mode={mode}", n, m)
    got, sender = [], None
    while guest.poll() is None:
        try:
            got.append(host.recv(65536))
        except TimeoutError:
            continue
        if sender is None:  # the guest is up: now it can take frames
            sender = threading.Thread(target=send_paced,
                                      args=(to_guest, ("127.0.0.1", qemu_port), m, 1000))
            sender.start()
    out = finish(guest)
    while len(got) < n:  # what is still queued on our socket
        try:
            got.append(host.recv(65536))
        except TimeoutError:
            break
    capture.send_signal(signal.SIGINT)
    capture.wait(30)
    host.close()
    to_guest.close()
    assert guest.returncode == 0, out
    assert ("packed rings" if "packed" in mode else "split rings") in out, out
    assert f"sent {n:,}/{n:,}" in out and f"received {m:,}/{m:,}" in out
    assert got == [frame(i, 60) for i in range(n)]
    seen = tcpdump_frames(tmp_path / "lo.pcap")
    assert [p[-60:] for p in seen] == [frame(i, 60) for i in range(n)]  # past Ethernet/IP/UDP


# -- a tap device on the host: QEMU's own virtio-net device model -------------

ETH_P_ALL, PACKET_OUTGOING = 0x0003, 4
#: Frames from 60 bytes to a 9000-byte jumbo (the tap's MTU is set to 9000),
#: cycled: sizes either side of the 2048-byte merged receive buffers too.
TAP_SIZES = (60, 61, 127, 1514, 2047, 2048, 2049, 4096, 8999, 9000)
TAP_MTU = 9000
_taps = itertools.count()


def tap_name() -> str:
    """A tap name of this run only (pid and a counter, within IFNAMSIZ):
    two suites on one machine never share, and so never take down, a tap."""
    name = f"snbt{os.getpid()}x{next(_taps)}"  # no ".": sysctl keys
    assert len(name) < 16, name
    return name


def quiet_tap(name: str) -> None:
    """A host tap that carries only our frames: no IPv6, ARP or multicast
    chatter from the host kernel into the guest's receive count."""
    subprocess.run(["ip", "link", "del", name], capture_output=True)
    for cmd in (["ip", "tuntap", "add", "dev", name, "mode", "tap"],
                ["sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1"],
                ["ip", "link", "set", name, "mtu", str(TAP_MTU), "arp", "off", "multicast",
                 "off", "up"]):
        subprocess.run(cmd, check=True, capture_output=True)


def tap_counts(name: str) -> dict[str, int]:
    """The host kernel's own count of the tap's frames: rx is what QEMU
    wrote (from the guest), tx what went to QEMU (to the guest)."""
    stats = Path("/sys/class/net") / name / "statistics"
    return {key: int((stats / key).read_text())
            for key in ("rx_packets", "tx_packets", "rx_dropped", "tx_dropped")}


def send_to_guest(host: socket.socket, count: int) -> None:
    """The guest's M frames, of every size, a little paced."""
    for seq in range(count):
        host.send(cycled(seq, TAP_SIZES))
        time.sleep(0.001)


#: What vguest (packed rings asked for by default) says on a legacy device.
LEGACY_RINGS = ("split rings (packed rings asked for, but pci 0000:00:05.0 legacy has the 32 "
                "feature bits of a legacy device, and RING_PACKED is bit 34)")


@pytest.mark.parametrize("rings, device, options", [
    (LEGACY_RINGS, "mode=legacy", ()),
    ("packed rings", "mode=modern,packed=on", ()),
    ("packed rings", "mode=modern,packed=on", ("--rx-buffer-size", "2048", "--event-idx")),
    (LEGACY_RINGS, "mode=transitional,packed=on", ("--pci-mode", "legacy"))],
    ids=["split-legacy", "packed-modern", "packed-modern-merged-event-idx",
         "packed-device-through-legacy"])
def test_tap_netdev_carries_both_directions(rings: str, device: str,
                                            options: tuple[str, ...]) -> None:
    """vguest against QEMU's own virtio-net device (tap netdev, no vhost):
    every frame of 60..9000 bytes each way, counted by vguest in the guest
    and by the tap and a raw socket on the host. A packed=on device seen
    through its legacy interface cannot offer RING_PACKED (bit 34): split
    rings then, and vguest says why."""
    n, m = 500, 500
    tap = tap_name()
    quiet_tap(tap)
    host = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        host.bind((tap, 0))
        host.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
        host.settimeout(0.2)
        guest = guest_selftest(f"tap:{tap},{device}", n, m,
                               extra=("--size", ",".join(map(str, TAP_SIZES)), *options))
        got, sender = [], None
        while guest.poll() is None or len(got) < n:
            try:
                data, address = host.recvfrom(65536)
            except TimeoutError:
                if guest.poll() is not None:
                    break
                continue
            if address[2] == PACKET_OUTGOING:
                continue  # our own frames to the guest
            got.append(data)
            if sender is None:  # the guest is up: now it can take frames
                sender = threading.Thread(target=send_to_guest, args=(host, m))
                sender.start()
        out = finish(guest)
        if sender is not None:
            sender.join()
        counts = tap_counts(tap)
    finally:
        host.close()
        subprocess.run(["ip", "link", "del", tap], capture_output=True)
    assert guest.returncode == 0, out
    assert f", {rings}\n" in out, out
    assert f"sent {n:,}/{n:,}" in out and f"received {m:,}/{m:,}" in out, out
    assert "60..9000 bytes" in out and ": ok" in out, out
    assert got == [cycled(i, TAP_SIZES) for i in range(n)]
    assert counts == {"rx_packets": n, "tx_packets": m, "rx_dropped": 0, "tx_dropped": 0}
    size = sum(len(cycled(i, TAP_SIZES)) for i in range(n))  # n == m: the same bytes
    assert f"vguest counters: tx {n:,} packets {size:,} bytes, rx {m:,} packets {size:,} " \
           "bytes" in out, out


# -- the README's one command -------------------------------------------------

def test_one_command_runs_both_ends_with_host_run(tmp_path: Path) -> None:
    graph = (REPO / "configs" / "vm-vguest-host.yaml").read_text()
    graph = graph.replace("/tmp/snabbpy-vm-vguest", str(tmp_path / "demo"))
    (tmp_path / "host.yaml").write_text(graph)
    result = subprocess.run(
        [*SNABBPY, "vm", "run", "--host-run", str(tmp_path / "host.yaml"),
         "--net", f"vhost-user:{tmp_path / 'demo.sock'}", "--",
         "snabbpy", "selftest", "apps.vguest", "--pci", GUEST_NIC, "--packets", "1000",
         "--expect-rx", "1000"], cwd=REPO, capture_output=True, text=True, timeout=HANG_GUARD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sent 1,000/1,000" in result.stdout and "received 1,000/1,000" in result.stdout
    assert "link report" in result.stderr  # the host graph's final report
    assert tcpdump_frames(tmp_path / "demo.pcap") == [frame(i, 60) for i in range(1000)]
