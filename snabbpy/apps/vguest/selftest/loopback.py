"""``snabbpy selftest apps.vguest``: packets each way through VGuest.

With no device named, a vhost-user backend that loops every packet back is
started in another process (snabbpy's VhostUser under ``snabbpy run``) and
VGuest connects to it. With ``--vhost-user PATH`` the backend given must
loop packets back itself. N packets go out, N must come back, intact; the
exit status is 0 only if every packet is accounted for.
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

from snabbpy.apps.vguest.selftest import graph
from snabbpy.apps.vguest.transport import TransportError
from snabbpy.core import packet
from snabbpy.core.config import ConfigError
from snabbpy.core.spawn import snabbpy_command

TIMEOUT = 60.0
#: Packets out at a time: half of the default receive ring.
WINDOW = 128


def parse(argv: list[str]) -> argparse.Namespace:
    """Options from ``argv``, defaults from SNABBPY_VGUEST_* variables."""
    env = os.environ.get
    p = argparse.ArgumentParser(prog="snabbpy selftest apps.vguest")
    p.add_argument("--vhost-user", default=env("SNABBPY_VGUEST_SOCKET"),
                   help="vhost-user socket of a backend that loops packets back")
    p.add_argument("--packets", type=int, default=int(env("SNABBPY_VGUEST_PACKETS", "10000")))
    p.add_argument("--size", type=int, default=60, help="packet size (60..10240)")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        raise ConfigError(f"selftest apps.vguest: bad arguments {argv}") from e
    if not 14 <= args.size <= packet.PAYLOAD_SIZE or args.packets < 1:
        raise ConfigError("selftest apps.vguest: --size must be 14..10240, --packets >= 1")
    return args


def start_vhost_user(workdir: Path, sock: str, is_server: bool = True) -> subprocess.Popen:
    """``snabbpy run`` of a VhostUser on ``sock`` whose output loops to its
    input, in another process; its output goes to ``workdir/vhost.log``."""
    yaml = workdir / "loop.yaml"
    yaml.write_text(
        "apps:\n"
        f"  vhost: {{class: vhost.VhostUser, config: {{socket_path: {sock!r}, "
        f"is_server: {str(is_server).lower()}}}}}\n"
        "links:\n  - vhost.output -> vhost.input\n")
    with open(workdir / "vhost.log", "wb") as log:
        return subprocess.Popen(snabbpy_command("run", str(yaml), "--report-interval", "0"),
                                cwd=workdir, stdout=log, stderr=subprocess.STDOUT)


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
    engine = graph.start(nic_conf, packets, size, WINDOW)
    sink, nic = engine.apps["sink"], engine.apps["nic"]
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
    args = parse(argv)
    before = packet.in_use()
    backend, workdir = None, None
    try:
        if args.vhost_user:
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
    bad = graph.bad_entries(counts, ("bad", "over"))
    leaked = packet.in_use() - before
    ok = (counts["sent"] == counts["received"] == args.packets and not counts["corrupt"]
          and not bad and leaked == 0)
    print(f"vguest selftest: sent {counts['sent']:,}, received {counts['received']:,} "
          f"({args.size} bytes), corrupt {counts['corrupt']}, bad entries {bad or 0}, "
          f"leaked {leaked}: {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1
