#!/usr/bin/env python3
"""Packet rates of vguest on PCI inside a VM-lab guest, against a snabbpy
VhostUser graph on the host, and the guest's boot time.

    python scripts/bench-vm-vguest.py [--packets 100000] [--runs 3] [--mode legacy,modern]

For each mode it runs the guest's PCI selftest three ways (transmit only,
receive only, both at once) and prints the rates the guest measured, best
and spread over the runs. The machine is shared and the guest runs under
TCG when KVM does not work, so treat the numbers as orders of magnitude.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from snabbpy.core.spawn import snabbpy_command

SNABBPY = snabbpy_command()
HOST = """\
apps:
  vhost: {{class: vhost.VhostUser, config: {{socket_path: "{sock}"}}}}
  answer: {{class: "snabbpy.vm.hostapps:Responder", config: {{count: {count}}}}}
links:
  - vhost.output -> answer.input
  - answer.reply -> vhost.input
"""
RATES = re.compile(r"sent [\d,]+/[\d,]+ \(([\d,]+|-)( pps)?\), received [\d,]+/[\d,]+ "
                   r"\(([\d,]+|-)( pps)?\).*: ok")


def one_run(mode: str, tx: int, rx: int) -> tuple[int, int] | None:
    """(tx pps, rx pps) the guest saw, or None if the run failed."""
    with tempfile.TemporaryDirectory(prefix="bench-vm-") as tmp:
        sock = Path(tmp) / "vm.sock"
        (Path(tmp) / "host.yaml").write_text(HOST.format(sock=sock, count=rx))
        host = subprocess.Popen([*SNABBPY, "run", f"{tmp}/host.yaml", "--report-interval", "0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        while not sock.exists():
            time.sleep(0.05)
        guest = subprocess.run(
            [*SNABBPY, "vm", "run", "--net", f"vhost-user:{sock},mode={mode},queue=1024", "--",
             *SNABBPY, "selftest", "apps.vguest", "--pci", "0000:00:05.0", "--packets", str(tx),
             "--expect-rx", str(rx), "--timeout", "300"], capture_output=True, text=True)
        host.send_signal(signal.SIGTERM)
        host.wait(60)
    match = RATES.search(guest.stdout)
    if guest.returncode or not match:
        print(guest.stdout[-2000:], file=sys.stderr)
        return None
    value = lambda s: int(s.replace(",", "")) if s != "-" else 0  # noqa: E731
    return value(match.group(1)), value(match.group(3))


def boot_seconds() -> str:
    """What `snabbpy vm run -v` reports for a guest running `true`."""
    out = subprocess.run([*SNABBPY, "vm", "run", "-v", "--", "true"], capture_output=True,
                         text=True).stderr
    match = re.search(r"# accel=(\S+) boot=(\S+ s) total=(\S+ s)", out)
    return f"{match.group(1)}: boot {match.group(2)}, total {match.group(3)}" if match else "?"


def summary(values: list[int]) -> str:
    """Best and spread of some rates."""
    values = [v for v in values if v]
    if not values:
        return "-"
    return f"{max(values):>8,} pps (spread {min(values):,}..{max(values):,})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--packets", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--mode", default="legacy,modern")
    args = p.parse_args()
    os.chdir(Path(__file__).resolve().parents[1])
    print(f"guest {boot_seconds()}")
    n = args.packets
    for mode in args.mode.split(","):
        for label, tx, rx in (("tx only", n, 0), ("rx only", 1, n), ("both", n, n)):
            runs = [one_run(mode, tx, rx) for _ in range(args.runs)]
            ok = [r for r in runs if r]
            line = f"{mode:7} {label:8}"
            if tx > 1:
                line += f"  guest tx {summary([r[0] for r in ok])}"
            if rx:
                line += f"  guest rx {summary([r[1] for r in ok])}"
            print(line + f"  ({len(ok)}/{len(runs)} runs ok)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
