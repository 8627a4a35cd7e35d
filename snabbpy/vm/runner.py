"""Boot a lab guest, stream the command's output, return its exit status.

The guest's serial console carries everything: firmware and kernel noise,
then init's start marker, the command's output, the exit marker. The
`ConsoleFilter` turns that stream into the command's output (noise only with
verbose) and the exit status; `run` owns the QEMU process, the deadline and
cleanup on Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from snabbpy.vm import accel as accel_mod
from snabbpy.vm.initramfs import (
    ERROR_MARKER,
    EXIT_MARKER,
    START_MARKER,
    GuestCommand,
    Share,
    build_initramfs,
)
from snabbpy.vm.kernel import find_assets
from snabbpy.vm.netspec import NetSpec
from snabbpy.vm.qemu import VMConfig, build_command, qemu_binary

Writer = Callable[[str], None]


class VMError(RuntimeError):
    """The guest did not run the command to completion (boot, setup or QEMU)."""


class VMTimeout(VMError):
    """The guest ran past its deadline and was killed."""


@dataclass
class RunOptions:
    """What `snabbpy vm run` was asked for."""

    argv: Sequence[str]
    memory_mib: int = 1024
    cpus: int = 1
    hugepages: int = 64
    timeout: float = 300.0
    accel: str = "auto"
    nets: Sequence[NetSpec] = ()
    shares: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    verbose: bool = False


@dataclass
class RunResult:
    """How the guest run went: exit status, accelerator and timings (s)."""

    status: int
    accel: str
    boot_seconds: float | None
    total_seconds: float


class ConsoleFilter:
    """Split console lines into command output and noise; find the status."""

    def __init__(self, cmd: GuestCommand, out: Writer, noise: Writer | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.start, self.end, self.error = (
            cmd.marker(m) for m in (START_MARKER, EXIT_MARKER, ERROR_MARKER)
        )
        self.out, self.noise = out, noise
        self.clock = clock
        self.started = False
        self.started_at: float | None = None  # clock() when the command began
        self.status: int | None = None
        self.errors: list[str] = []
        self.tail: list[str] = []  # last noise lines, to explain a failed boot

    def feed_line(self, raw: str) -> None:
        """Handle one console line (with its newline, if it had one)."""
        line = raw[:-2] + "\n" if raw.endswith("\r\n") else raw
        if self.error in line:
            self.errors.append(line.split(self.error, 1)[1].lstrip(": ").strip())
        if self.started and self.status is None and self.end in line:
            before, _, after = line.partition(self.end)
            if before:
                self.out(before)
            self.status = int(after.split()[0]) if after.split() else 125
        elif self.started and self.status is None:
            self.out(line)
        else:
            self._noise(line)
            if line.strip() == self.start:
                self.started, self.started_at = True, self.clock()

    def _noise(self, line: str) -> None:
        self.tail = (self.tail + [line])[-20:]
        if self.noise:
            self.noise(line)


def guest_env(extra: dict[str, str]) -> dict[str, str]:
    """Return the guest command's environment: the host's useful variables."""
    env = {"HOME": "/root", "TERM": "dumb", "SNABBPY_IN_VM": "1"}
    # The interpreter running us comes first, so `python3` in the guest is
    # the same one (not a pyenv shim, which is slow under TCG).
    path = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env["PATH"] = os.path.dirname(sys.executable) + ":" + path
    for key in ("PYTHONPATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "SNABBPY_VM_CACHE"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra)
    return env


#: Where the guest mounts its own filesystems over the host's root.
PRIVATE_IN_GUEST = ("/tmp", "/run", "/dev")


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def needed_by_guest(cwd: str) -> list[str]:
    """Directories the command needs that the guest would hide behind its
    own /tmp, /run or /dev: the working directory, the checkout holding
    snabbpy and the Python environment (a clone or a venv under /tmp)."""
    import snabbpy

    candidates = [cwd, str(Path(snabbpy.__file__).resolve().parent.parent), sys.prefix]
    return [os.path.realpath(p) for p in candidates
            if any(_inside(os.path.realpath(p), d) for d in PRIVATE_IN_GUEST)]


def _shares(paths: Sequence[str], needed: Sequence[str] = ()) -> list[Share]:
    """The user's --share directories, then whatever else the guest needs
    that none of them covers, parents before children (mount order)."""
    chosen: list[str] = []
    for path in paths:
        full = os.path.abspath(path)
        if not os.path.isdir(full):
            raise VMError(f"--share {path}: not a directory")
        chosen.append(full)
    for path in sorted(needed, key=len):
        if os.path.isdir(path) and not any(_inside(path, c) for c in chosen):
            chosen.append(path)
    chosen.sort(key=lambda p: p.count("/"))
    return [Share(tag=f"share{i}", path=p) for i, p in enumerate(chosen)]


def _pump(proc: subprocess.Popen, filt: ConsoleFilter, deadline: float) -> None:
    """Feed QEMU's console to the filter until it exits or the deadline passes."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    pending = b""
    fd = proc.stdout.fileno()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise VMTimeout("guest timed out")
        if not sel.select(timeout=min(remaining, 1.0)):
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            filt.feed_line(line.decode(errors="replace") + "\n")
    if pending:
        filt.feed_line(pending.decode(errors="replace"))


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass  # unkillable QEMU (stuck in KVM); nothing more to do here


def run(opts: RunOptions, out: Writer, noise: Writer | None = None) -> RunResult:
    """Boot a guest, run opts.argv in it, stream its output to `out`.

    Raises VMError (or VMTimeout) when the command could not be run to its
    end; otherwise returns its exit status in the RunResult.
    """
    assets = find_assets()
    qemu = qemu_binary()
    accel = accel_mod.choose_accel(opts.accel, assets, qemu)
    cwd = opts.cwd or os.getcwd()
    cmd = GuestCommand(
        argv=list(opts.argv), cwd=cwd, env=guest_env(opts.env), hugepages=opts.hugepages,
        shares=_shares(opts.shares, needed_by_guest(cwd)), token=secrets.token_hex(4),
    )
    filt = ConsoleFilter(cmd, out, noise if opts.verbose else None)
    with tempfile.TemporaryDirectory(prefix="snabbpy-vm-") as tmp:
        initrd = build_initramfs(assets, cmd, Path(tmp) / "initrd.cpio")
        cfg = VMConfig(kernel=assets.kernel, initrd=initrd, memory_mib=opts.memory_mib,
                       cpus=opts.cpus, accel=accel, nets=opts.nets, shares=cmd.shares,
                       verbose=opts.verbose)
        argv = build_command(cfg, qemu)
        if opts.verbose and noise:
            noise(f"# accel={accel}: {' '.join(argv)}\n")
        started = time.monotonic()
        err = open(Path(tmp) / "qemu.err", "w+b")  # noqa: SIM115 - closed in finally
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err)
        timed_out = False
        try:
            _pump(proc, filt, started + opts.timeout)
            proc.wait(timeout=30)
        except VMTimeout:
            timed_out = True
            _stop(proc)
        except BaseException:
            _stop(proc)
            raise
        finally:
            err.seek(0)
            qemu_err = err.read().decode(errors="replace").strip()
            err.close()
    if timed_out:
        # QEMU's last word often says why, e.g. waiting for a vhost-user peer.
        said = f"; QEMU said: {qemu_err.splitlines()[-1]}" if qemu_err else ""
        raise VMTimeout(f"guest did not finish within {opts.timeout:g} s (killed QEMU){said}; "
                        "raise --timeout or use --verbose to watch the boot")
    return _result(filt, proc.returncode, qemu_err, accel, started)


def _result(filt: ConsoleFilter, rc: int | None, qemu_err: str, accel: str,
            started: float) -> RunResult:
    if filt.errors:
        raise VMError("guest setup failed: " + "; ".join(filt.errors))
    if filt.status is None:
        detail = qemu_err or "".join(filt.tail).strip() or "no console output"
        raise VMError(f"guest ended without reporting an exit status (QEMU rc {rc}): {detail}")
    boot = filt.started_at - started if filt.started_at is not None else None
    return RunResult(status=filt.status, accel=accel, boot_seconds=boot,
                     total_seconds=time.monotonic() - started)
