"""The host half of a VM-lab experiment: a snabbpy graph running beside the
guest (``snabbpy vm run --host-run CONFIG.yaml``).

The graph runs under ``snabbpy run`` in a child process from before QEMU
starts until the guest has finished, so one command sets up both ends of a
vhost-user link. When a ``--net vhost-user:PATH`` (QEMU connects) is
given, QEMU is started only once the graph listens at PATH.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from snabbpy.core.spawn import snabbpy_command
from snabbpy.vm.netspec import NetSpec

#: Seconds a host graph gets to start listening, and to stop.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class HostRunError(RuntimeError):
    """The host graph did not start or did not stop cleanly."""


class HostGraph:
    """``snabbpy run CONFIG`` in a child process, its output on ``log``
    (our stderr by default, so the guest's stdout stays the guest's)."""

    def __init__(self, config: str, log=None) -> None:
        if not Path(config).is_file():
            raise HostRunError(f"--host-run: no such graph file {config!r}")
        self.config = config
        self.log = log if log is not None else sys.stderr
        self.proc: subprocess.Popen | None = None

    def start(self, nets: list[NetSpec]) -> None:
        """Starts the graph; waits until it listens on every vhost-user
        socket QEMU will connect to."""
        paths = [Path(n.target) for n in nets if n.kind == "vhost-user" and not n.server]
        for path in paths:  # a stale socket must not pass for the graph listening
            if path.is_socket():
                path.unlink()
        self.proc = subprocess.Popen(
            snabbpy_command("run", self.config, "--report-interval", "0"),
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while not all(p.exists() for p in paths):
            if self.proc.poll() is not None:
                raise HostRunError(f"--host-run: snabbpy run {self.config} exited with status "
                                   f"{self.proc.returncode} before the guest started")
            if time.monotonic() > deadline:
                self.stop()
                raise HostRunError(f"--host-run: {self.config} did not listen at "
                                   f"{', '.join(map(str, paths))} within {START_TIMEOUT:.0f} s")
            time.sleep(0.05)

    def stop(self) -> int:
        """Stops the graph as Ctrl-C would (its final report is printed);
        returns its exit status."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
