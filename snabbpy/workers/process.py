"""Worker processes as the supervisor sees them: something to order over a
channel, poll, kill and wait for."""

from __future__ import annotations

import signal
import socket
from typing import Protocol

from snabbpy.core.spawn import spawn_module
from snabbpy.workers.channel import Channel


class WorkerProcess(Protocol):
    """What the supervisor needs of a worker process."""

    pid: int
    channel: Channel

    def poll(self) -> int | None:
        """Exit status (negative: killed by that signal), None while running."""

    def kill(self) -> None:
        """Kills it at once."""

    def wait(self, timeout: float | None = None) -> int:
        """Waits for it to end; returns the exit status."""


class _Spawned:
    """A real worker process and its control channel."""

    def __init__(self, process, channel: Channel) -> None:
        self.process, self.channel, self.pid = process, channel, process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def kill(self) -> None:
        self.process.kill()

    def wait(self, timeout: float | None = None) -> int:
        return self.process.wait(timeout)


def start_worker(name: str) -> WorkerProcess:
    """Starts the process of worker ``name`` with its control channel."""
    parent, child = socket.socketpair()
    try:
        process = spawn_module("snabbpy.workers.child",
                               ["--control", str(child.fileno()), "--name", name],
                               pass_fds=(child.fileno(),))
    finally:
        child.close()
    return _Spawned(process, Channel(parent))


def describe_exit(status: int) -> str:
    """How a process ended, in words ("killed by signal SIGKILL")."""
    if status < 0:
        try:
            return f"killed by signal {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exited with status {status}"
