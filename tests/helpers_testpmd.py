"""Run DPDK's dpdk-testpmd as a vhost-user peer in tests and benchmarks.

``TestPmd`` starts testpmd in interactive mode and drives it through stdin
(``start``, ``show port stats 0``, ``stop``, ``quit``): unlike ``--auto-start``
with ``--stats-period`` this gives exactly the numbers we ask for, when we
ask.  It is a context manager, so the process is always stopped, even when
the test fails.  Working command lines and numbers: docs/dpdk-notes.md.

    with TestPmd.vhost_backend("/tmp/x.sock", forward_mode="rxonly", fwd_cpu=1) as rx:
        with TestPmd.virtio_user("/tmp/x.sock", forward_mode="txonly", fwd_cpu=0) as tx:
            rx.wait_link_up(); tx.wait_link_up()
            rx.start_forwarding(); tx.start_forwarding()
            ...
            print(rx.port_stats().rx_packets)
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROMPT = "testpmd> "
TESTPMD = "dpdk-testpmd"
_counter = itertools.count()


def have_testpmd() -> bool:
    """True when dpdk-testpmd is installed (scripts/install-dpdk.sh)."""
    return shutil.which(TESTPMD) is not None


def need_testpmd() -> None:
    """Fails in CI, skips elsewhere, when dpdk-testpmd is missing."""
    import pytest  # here: scripts import this module without pytest

    if not have_testpmd():
        why = "dpdk-testpmd missing: run scripts/install-dpdk.sh"
        (pytest.fail if os.environ.get("CI") else pytest.skip)(why)


class TestPmdError(RuntimeError):
    """testpmd failed to start, exited, or did not answer in time."""


@dataclass(frozen=True)
class PortStats:
    """``show port stats`` of one port: totals since start, and the rates
    measured since the previous ``show port stats`` of that port."""

    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int
    rx_missed: int
    rx_errors: int
    tx_errors: int
    rx_nombuf: int
    rx_pps: int
    tx_pps: int


_STATS_FIELDS = {
    "RX-packets": "rx_packets", "TX-packets": "tx_packets", "RX-bytes": "rx_bytes",
    "TX-bytes": "tx_bytes", "RX-missed": "rx_missed", "RX-errors": "rx_errors",
    "TX-errors": "tx_errors", "RX-nombuf": "rx_nombuf", "Rx-pps": "rx_pps", "Tx-pps": "tx_pps",
}


def parse_port_stats(text: str) -> PortStats:
    """Parse the block printed by ``show port stats <port>``."""
    start = text.find("NIC statistics for port")
    if start < 0:
        raise TestPmdError(f"no port statistics in testpmd output: {text!r}")
    values = dict(re.findall(r"([A-Za-z]+-[a-z]+):\s+(\d+)", text[start:]))
    missing = [key for key in _STATS_FIELDS if key not in values]
    if missing:
        raise TestPmdError(f"port statistics lack {missing}: {text!r}")
    return PortStats(**{field: int(values[key]) for key, field in _STATS_FIELDS.items()})


class TestPmd:
    """One dpdk-testpmd process with one vhost-user port (port 0).

    ``vdev`` is the ``--vdev`` argument; ``forward_mode`` one of testpmd's
    modes (io, rxonly, txonly, macswap ...); ``fwd_cpu`` the CPU the single
    forwarding lcore is pinned to (the main lcore, idle at the prompt, may
    run on any CPU); ``txpkts`` the txonly packet size, ``burst`` packets per
    burst.  Memory comes from ordinary pages (``--no-huge``) and the process
    keeps no shared config files (``--no-shconf``; ``--in-memory`` is refused
    with ``--no-huge``), and a unique ``--file-prefix`` lets several run at once.
    """

    __test__ = False  # a helper, not a pytest test class

    def __init__(self, vdev: str, forward_mode: str = "io", fwd_cpu: int = 1,
                 txpkts: int | None = None, burst: int | None = None, mem_mb: int = 512,
                 nb_mbufs: int = 16384, log_level: str | None = None,
                 extra_args: tuple[str, ...] = (), queues: int = 1) -> None:
        self.vdev = vdev
        self.name = f"snabbpy-{os.getpid()}-{next(_counter)}"
        cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
        eal = [TESTPMD, "--lcores", f"0@({cpus}),1@{fwd_cpu}", "--no-huge", "-m", str(mem_mb),
               "--no-pci", "--no-shconf", "--file-prefix", self.name, "--vdev", vdev]
        if log_level:
            eal.append(f"--log-level={log_level}")
        app = ["-i", "--nb-cores=1", f"--forward-mode={forward_mode}",
               f"--total-num-mbufs={nb_mbufs}", f"--rxq={queues}", f"--txq={queues}"]
        if txpkts is not None:
            app.append(f"--txpkts={txpkts}")
        if burst is not None:
            app.append(f"--burst={burst}")
        # stdbuf: testpmd's stdout is a pipe here, and a block-buffered prompt
        # would never arrive.
        self.argv = ["stdbuf", "-o0", *eal, "--", *app, *extra_args]
        self.output = ""
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Condition()
        self._reader: threading.Thread | None = None

    @classmethod
    def vhost_backend(cls, socket_path: str, client: bool = False, queues: int = 1,
                      **kw) -> TestPmd:
        """testpmd as the vhost-user backend (device), ``net_vhost``; server
        (it creates ``socket_path``) unless ``client``; ``queues`` pairs,
        all forwarded by the one forwarding lcore."""
        vdev = f"net_vhost0,iface={socket_path},queues={queues}" + (",client=1" if client else "")
        return cls(vdev, queues=queues, **kw)

    @classmethod
    def virtio_user(cls, socket_path: str, server: bool = False, queue_size: int = 256,
                    queues: int = 1, packed: bool = False, in_order: bool | None = None,
                    **kw) -> TestPmd:
        """testpmd as the vhost-user frontend (driver), ``virtio_user``; client
        (it connects to ``socket_path``) unless ``server``; ``queues`` pairs
        (more than one needs the emulated control queue, ``cq=1``); asking
        for packed rings (``packed_vq=1``) when ``packed``; ``in_order`` sets
        its ``in_order`` devarg (None: DPDK's default, 1)."""
        vdev = f"virtio_user0,path={socket_path},queues={queues},queue_size={queue_size}"
        if queues > 1:
            vdev += ",cq=1"
        vdev += (",server=1" if server else "") + (",packed_vq=1" if packed else "")
        vdev += "" if in_order is None else f",in_order={int(in_order)}"
        return cls(vdev, queues=queues, **kw)

    # --- process lifetime -------------------------------------------------

    def __enter__(self) -> TestPmd:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, wait: bool = True, timeout: float = 60.0) -> None:
        """Spawn testpmd and (if ``wait``) wait until it is ready.

        A ``virtio_user`` in server mode does not finish starting until its
        backend connects: start it with ``wait=False``, start the backend,
        then call ``wait_ready()``.
        """
        self._proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait for the first prompt: EAL is up and port 0 is configured."""
        try:
            self._wait_prompts(1, timeout)
        except TestPmdError:
            self.close()
            raise

    def close(self, timeout: float = 20.0) -> int | None:
        """Quit testpmd (politely, then by signal); return its exit status."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                proc.stdin.write(b"quit\n")
                proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        if proc.stdin:
            proc.stdin.close()
        if self._reader:
            self._reader.join(timeout)
        # --no-shconf keeps config files out, but EAL still makes a runtime
        # directory (mp socket) per file prefix: remove ours.
        shutil.rmtree(_runtime_dir() / self.name, ignore_errors=True)
        return proc.returncode

    def kill(self) -> int | None:
        """Kill testpmd at once (SIGKILL, as a crash would: nothing is told
        to its peer, the socket file stays); return its exit status."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        return self.close()

    def _read(self) -> None:
        fd = self._proc.stdout.fileno()
        while chunk := os.read(fd, 65536):
            with self._lock:
                self.output += chunk.decode(errors="replace")
                self._lock.notify_all()
        with self._lock:
            self._lock.notify_all()

    def _wait_prompts(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.output.count(PROMPT) < count:
                left = deadline - time.monotonic()
                if self._proc.poll() is not None and not self._reader.is_alive():
                    raise TestPmdError(f"testpmd exited ({self._proc.returncode}):\n"
                                       f"{self.output[-3000:]}")
                if left <= 0:
                    raise TestPmdError(f"testpmd gave no prompt in {timeout}s:\n"
                                       f"{self.output[-3000:]}")
                self._lock.wait(min(left, 0.5))

    # --- commands ---------------------------------------------------------

    def command(self, line: str, timeout: float = 30.0) -> str:
        """Run one interactive command; return what it printed."""
        with self._lock:
            before = len(self.output)
            prompts = self.output.count(PROMPT)
        try:
            self._proc.stdin.write(line.encode() + b"\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise TestPmdError(f"testpmd is gone:\n{self.output[-3000:]}") from None
        self._wait_prompts(prompts + 1, timeout)
        with self._lock:
            return self.output[before:]

    def start_forwarding(self) -> None:
        """Start packet forwarding (``start``)."""
        self.command("start")

    def stop_forwarding(self) -> str:
        """Stop forwarding (``stop``); returns the forward statistics printed."""
        return self.command("stop")

    def port_stats(self, port: int = 0) -> PortStats:
        """Port counters now, and rates since the previous call."""
        return parse_port_stats(self.command(f"show port stats {port}"))

    def link_up(self, port: int = 0) -> bool:
        """True when the port's link is up (a vhost-user peer is connected)."""
        return "Link status: up" in self.command(f"show port info {port}")

    def wait_link_up(self, port: int = 0, timeout: float = 60.0) -> None:
        """Wait until the vhost-user connection is set up and the link is up."""
        deadline = time.monotonic() + timeout
        while not self.link_up(port):
            if time.monotonic() > deadline:
                raise TestPmdError(f"port {port} link still down after {timeout}s:\n"
                                   f"{self.output[-3000:]}")
            time.sleep(0.2)


def _runtime_dir() -> Path:
    # Where EAL puts per-prefix runtime files: /var/run/dpdk for root.
    if os.geteuid() == 0:
        return Path("/var/run/dpdk")
    return Path(os.environ.get("XDG_RUNTIME_DIR", "/tmp")) / "dpdk"


def wait_for_socket(path: str | Path, timeout: float = 30.0) -> None:
    """Wait until a server created its Unix socket at ``path``."""
    deadline = time.monotonic() + timeout
    while not Path(path).is_socket():
        if time.monotonic() > deadline:
            raise TestPmdError(f"no socket at {path} after {timeout}s")
        time.sleep(0.05)
