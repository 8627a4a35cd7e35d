"""``snabbpy selftest apps.vguest``: packets each way through VGuest.

With no device named, a vhost-user backend that loops every packet back is
started in another process (snabbpy's VhostUser under ``snabbpy run``) and
VGuest connects to it.
With ``--vhost-user PATH`` or ``--pci ADDR`` the device given must loop
packets back itself. N packets go out, N must come back, intact; the exit
status is 0 only if every packet is accounted for.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from snabbpy.apps.vguest.transport import TransportError
from snabbpy.core import config, packet
from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine

TIMEOUT = 60.0
#: Packets out at a time: half of the default receive ring.
WINDOW = 128


def parse(argv: list[str]) -> argparse.Namespace:
    """Options from ``argv``, defaults from SNABBPY_VGUEST_* variables."""
    env = os.environ.get
    p = argparse.ArgumentParser(prog="snabbpy selftest apps.vguest")
    p.add_argument("--pci", default=env("SNABBPY_VGUEST_PCI"), help="virtio-net PCI address")
    p.add_argument("--vhost-user", default=env("SNABBPY_VGUEST_SOCKET"),
                   help="vhost-user socket of a backend that loops packets back")
    p.add_argument("--packets", type=int, default=int(env("SNABBPY_VGUEST_PACKETS", "10000")))
    p.add_argument("--size", type=int, default=60, help="packet size (60..10240)")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        raise ConfigError(f"selftest apps.vguest: bad arguments {argv}") from e
    if args.pci and args.vhost_user:
        raise ConfigError("selftest apps.vguest: give --pci or --vhost-user, not both")
    if not 14 <= args.size <= packet.PAYLOAD_SIZE or args.packets < 1:
        raise ConfigError("selftest apps.vguest: --size must be 14..10240, --packets >= 1")
    return args


class CountedSource(App):
    """Sends ``count`` numbered packets of ``size`` bytes, then nothing.

    With ``window`` and a ``sink`` (a CheckingSink, set after configure) at
    most ``window`` packets are out at a time: a peer that loops packets
    back without flow control (testpmd io) then never finds our receive
    ring full and never drops."""

    inputs, outputs = (), ("output",)

    config = {"count": Param(int), "size": Param(int), "window": Param(int, default=0)}

    def __init__(self, conf: dict) -> None:
        self.left, self.size, self.seq = conf["count"], conf["size"], 0
        self.window = conf["window"]
        self.sink: CheckingSink | None = None

    def pull(self) -> None:
        out = self.output["output"]
        n = min(self.left, out.nwritable())
        if self.window and self.sink is not None:
            n = min(n, self.window - (self.seq - self.sink.received))
        for _ in range(n):
            out.transmit(packet.from_bytes(frame(self.seq, self.size)))
            self.seq += 1
        self.left -= n


class CheckingSink(App):
    """Frees what arrives; counts packets that are not what was sent."""

    inputs, outputs = ("input",), ()

    def __init__(self, conf: dict) -> None:
        self.received = self.corrupt = 0

    def push(self) -> None:
        link = self.input["input"]
        while not link.empty():
            p = link.receive()
            data = packet.to_bytes(p)
            seq = int.from_bytes(data[14:18], "big") if len(data) >= 18 else -1
            self.corrupt += data != frame(seq, len(data))
            self.received += 1
            packet.free(p)


def frame(seq: int, size: int) -> bytes:
    """Packet ``seq``: broadcast Ethernet, local ethertype, numbered payload."""
    ethernet = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5"
    head = ethernet + (seq % 2**32).to_bytes(4, "big")
    return (head + bytes((seq + i) % 251 for i in range(max(0, size - 18))))[:size]


def start_vhost_user(workdir: Path, sock: str, is_server: bool = True) -> subprocess.Popen:
    """``snabbpy run`` of a VhostUser on ``sock`` whose output loops to its
    input, in another process; its output goes to ``workdir/vhost.log``."""
    yaml = workdir / "loop.yaml"
    yaml.write_text(
        "apps:\n"
        f"  vhost: {{class: vhost.VhostUser, config: {{socket_path: {sock!r}, "
        f"is_server: {str(is_server).lower()}}}}}\n"
        "links:\n  - vhost.output -> vhost.input\n")
    run = "import sys; from snabbpy.cli import main; sys.exit(main())"
    with open(workdir / "vhost.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-c", run, "run", str(yaml),
                                 "--report-interval", "0"], cwd=workdir, stdout=log,
                                stderr=subprocess.STDOUT)


def stop_vhost_user(proc: subprocess.Popen) -> int:
    """Stops the backend (SIGTERM: it prints its report); returns its status."""
    proc.terminate()
    try:
        return proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def run(nic_conf: dict, packets: int, size: int) -> dict[str, int]:
    """Source -> VGuest -> (device loops) -> VGuest -> Sink; returns counts."""
    c = config.new()
    config.app(c, "source", CountedSource, {"count": packets, "size": size, "window": WINDOW})
    config.app(c, "nic", "vguest.VGuest", nic_conf)
    config.app(c, "sink", CheckingSink)
    config.link(c, "source.output -> nic.input")
    config.link(c, "nic.output -> sink.input")
    engine = Engine()
    engine.configure(c)
    sink, nic = engine.apps["sink"], engine.apps["nic"]
    engine.apps["source"].sink = sink
    deadline = time.monotonic() + TIMEOUT
    while sink.received < packets and time.monotonic() < deadline:
        engine.breathe()
    for _ in range(1000):  # a little longer: late extras would show as duplicates
        engine.breathe()
    print(nic.report())
    counts = {"sent": packets - engine.apps["source"].left, "received": sink.received,
              "corrupt": sink.corrupt, **nic.stats.snapshot()}
    engine.stop()
    return counts


def main(argv: list[str]) -> int:
    """Runs the selftest; 0 if every packet came back intact."""
    if os.environ.get("SNABBPY_VGUEST_PCI") or any(a.split("=")[0] == "--pci" for a in argv):
        from snabbpy.apps.vguest.selftest.pci import main as pci_main  # host sends, we count

        return pci_main(argv)
    args = parse(argv)
    before = packet.in_use()
    backend, workdir = None, None
    try:
        if args.pci:
            nic = {"pciaddr": args.pci}
        elif args.vhost_user:
            nic = {"vhost_user": args.vhost_user}
        else:
            workdir = Path(tempfile.mkdtemp(prefix="vguest-selftest-"))
            sock = str(workdir / "vhost.sock")
            backend = start_vhost_user(workdir, sock)
            print(f"vguest selftest: backend vhost.VhostUser in process {backend.pid}, "
                  f"socket {sock}")
            nic = {"vhost_user": sock}
        counts = run(nic, args.packets, args.size)
    except (TransportError, ConfigError) as e:  # VGuest: device unreachable
        print(f"vguest selftest: FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        if backend is not None and stop_vhost_user(backend) not in (0, -15):
            print((workdir / "vhost.log").read_text()[-3000:], file=sys.stderr)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    bad = {k: v for k, v in counts.items() if k.split("_", 1)[-1].startswith(("bad", "over"))
           and v}
    leaked = packet.in_use() - before
    ok = (counts["sent"] == counts["received"] == args.packets and not counts["corrupt"]
          and not bad and leaked == 0)
    print(f"vguest selftest: sent {counts['sent']:,}, received {counts['received']:,} "
          f"({args.size} bytes), corrupt {counts['corrupt']}, bad entries {bad or 0}, "
          f"leaked {leaked}: {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1
