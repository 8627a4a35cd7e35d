"""The supervisor: runs a graph whose apps are spread over workers.

It lives in the main process beside the main engine (which runs the apps
without a worker). ``configure(c)`` places the graph (``placement``),
makes the interlink rings, starts the workers it lacks, sends the others
their new graph and stops those left without apps. ``done()`` is the main
engine's ``done`` callback: it notices a worker that died or failed, and
when the whole graph is finished. ``stop()`` stops every worker and
gathers its final counters; ``close()`` removes the rings.

A worker is anything with the ``WorkerProcess`` interface (``process.
start_worker`` makes real ones), so the supervisor is tested with fake
workers.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snabbpy.core import counter, interlink, registry
from snabbpy.core.config import Config, ConfigError
from snabbpy.core.engine import Engine
from snabbpy.workers import placement, published
from snabbpy.workers.channel import ChannelClosed
from snabbpy.workers.placement import MAIN, Placement
from snabbpy.workers.process import WorkerProcess, describe_exit, start_worker

#: Nanoseconds between two looks at the workers from the main engine (each
#: look is a few system calls per worker: every 10 ms, not every breath).
CHECK_NS = 10_000_000
#: Seconds a worker is given to start, to apply a configuration or to stop.
ANSWER_SECONDS = 30.0
#: Seconds a worker whose channel closed is given to exit before it is killed.
EXIT_SECONDS = 5.0


class WorkerFailed(Exception):
    """A worker died or one of its apps raised: the message names it."""

    def __init__(self, worker: str, message: str, frames: str = "", kind: str = "died") -> None:
        super().__init__(message)
        #: "died", "app" (an app raised) or "config" (the worker's graph was refused)
        self.worker, self.frames, self.kind = worker, frames, kind


@dataclass
class Handle:
    """The supervisor's view of one worker."""

    name: str
    process: WorkerProcess
    cpu: int | None = None
    report: dict[str, Any] | None = None     # its last counters and app reports
    stopped: dict[str, Any] | None = None    # its packet counts once stopped
    failure: WorkerFailed | None = None
    status: int | None = None


class Supervisor:
    """Runs the graph of ``engine`` (the main process's) and its workers."""

    def __init__(self, engine: Engine, start: Callable[[str], WorkerProcess] = start_worker,
                 ring_dir: Path | None = None, config_file: str | None = None,
                 busywait: bool = False, wait: Callable[[float], Any] | None = None) -> None:
        self.engine = engine
        self.start = start
        self.ring_dir = ring_dir or registry.process_dir() / "interlinks"
        self.config_file = config_file
        self.busywait = busywait
        self.handles: dict[str, Handle] = {}
        self.placement = Placement(parts={MAIN: engine.config})
        self.failure: WorkerFailed | None = None
        self.finished = False
        self._next_check = 0
        self._quiet_since: tuple | None = None
        self._seq = 0
        #: the cpus a worker without a cpu may use (main's before any pinning)
        self.cpus = sorted(os.sched_getaffinity(0))
        #: the last counters of the rings removed, by link spec
        self.retired: dict[str, dict[str, int]] = {}
        #: the workers stopped by a configure (their accounts still count)
        self.left: list[Handle] = []

    # -- configuration ----------------------------------------------------

    def configure(self, c: Config) -> None:
        """Makes the running graph ``c``, over as many workers as it names."""
        placement.check(c)
        new = placement.place(c, self.ring_dir)
        old = self.placement
        for key, il in new.interlinks.items():
            if old.interlinks.get(key) != il:
                interlink.create(il.path)
        doc = placement.to_doc(c)
        for name in [n for n in self.handles if n not in new.parts]:
            self._stop_worker(self.handles[name])
            self.left.append(self.handles.pop(name))
        for name in new.workers:
            if name in self.handles:
                self._order(self.handles[name], {"op": "configure", "doc": doc}, "configured")
            else:
                self._start(name, new.cpus[name], doc)
        if new.cpus.get(MAIN) is not None:
            os.sched_setaffinity(0, {new.cpus[MAIN]})
        self.engine.configure(new.parts[MAIN])
        for key, il in old.interlinks.items():
            if new.interlinks.get(key) != il:
                self.retired[key] = _retire(il.path)
        self.placement = new
        if self.engine.shm_dir:  # for `snabbpy top` and the metrics
            published.write(new)
        self._quiet_since = None
        self.finished = False

    def _start(self, name: str, cpu: int | None, doc: dict) -> None:
        handle = Handle(name, self.start(name), cpu)
        self.handles[name] = handle
        self._order(handle, {"op": "start", "doc": doc, "ring_dir": str(self.ring_dir),
                             "path": list(sys.path), "cpu": cpu, "cpus": self.cpus,
                             "busywait": self.busywait, "config_file": self.config_file},
                    "ready")

    def _order(self, handle: Handle, order: dict, answer: str) -> dict:
        """Sends ``order`` and waits for ``answer``; a worker that fails or
        dies meanwhile raises WorkerFailed (a ConfigError of the worker's
        apps as ConfigError)."""
        self._seq += 1
        try:
            handle.process.channel.send({**order, "seq": self._seq})
        except ChannelClosed:
            pass
        reply = self._await(handle, answer)
        if reply is None:
            failure = handle.failure or self._death(handle)
            handle.failure = failure
            if failure.kind == "config":
                raise ConfigError(str(failure)) from None
            raise failure
        return reply

    def _await(self, handle: Handle, answer: str, seconds: float = ANSWER_SECONDS):
        """The message ``answer`` from ``handle``, or None when the worker
        failed, died or did not answer in time (then it is killed)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                messages = handle.process.channel.receive(timeout=0.05)
            except ChannelClosed:
                messages = None
            for m in messages or []:
                if self._note(handle, m) == answer:
                    return m
            if handle.failure is not None or messages is None:
                return None
        handle.process.kill()
        handle.failure = WorkerFailed(handle.name, f"worker {handle.name!r} did not answer "
                                      f"{answer!r} in {seconds:.0f} s: killed")
        return None

    def _note(self, handle: Handle, m: dict) -> str:
        """Keeps what a worker said; returns the kind of message."""
        op = m.get("op", "")
        if op == "report":
            handle.report = m
        elif op == "stopped":
            handle.stopped = m
        elif op == "failed":
            handle.failure = WorkerFailed(handle.name, f"worker {handle.name!r}: {m.get('error')}",
                                          str(m.get("frames") or ""), str(m.get("kind")))
        return op

    # -- watching -----------------------------------------------------------

    def _death(self, handle: Handle) -> WorkerFailed:
        status = handle.process.poll()
        if status is None:  # its channel closed first: it is on its way out
            try:
                status = handle.process.wait(EXIT_SECONDS)
            except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: it hangs
                handle.process.kill()
                status = handle.process.wait()
        handle.status = status
        return WorkerFailed(handle.name, f"worker {handle.name!r} (pid {handle.process.pid}) "
                            f"{describe_exit(status)}")

    def check(self) -> WorkerFailed | None:
        """Reads what the workers said; the first failure or death, if any."""
        for handle in self.handles.values():
            self._read(handle)
            if handle.failure is None and handle.process.poll() is not None:
                self._read(handle, until_closed=True)  # what it said before it ended
                handle.failure = handle.failure or self._death(handle)
            if handle.failure is not None and self.failure is None:
                self.failure = handle.failure
        return self.failure

    def _read(self, handle: Handle, until_closed: bool = False) -> None:
        """Notes the messages that arrived; with ``until_closed``, all of
        them up to the end of the channel (of a process that ended)."""
        try:
            while True:
                messages = handle.process.channel.receive(timeout=0)
                for m in messages:
                    self._note(handle, m)
                if not (messages and until_closed):
                    return
        except ChannelClosed:
            pass

    def done(self) -> bool:
        """For ``Engine.main(done=...)``: True once a worker died or failed,
        or the whole graph is finished (``finished``). Looks every
        ``CHECK_NS`` of the engine's clock."""
        if self.engine.now < self._next_check:
            return False
        self._next_check = self.engine.now + CHECK_NS
        if self.check() is not None:
            return True
        self.finished = self._graph_finished()
        return self.finished

    def _graph_finished(self) -> bool:
        """The whole graph is finished when, twice in a row with every
        worker having looked again in between, the main engine and every
        worker are quiet and no packet entered an interlink meanwhile."""
        if not self.engine.finished() and self.engine.apps:
            self._quiet_since = None
            return False
        statuses = {}
        for name, handle in self.handles.items():
            status = _read_status(handle.process.pid)
            if status is None or not status["quiet"]:
                self._quiet_since = None
                return False
            statuses[name] = status["checks"]
        sent = sum(_ring_counters(il.path).get("txpackets", 0)
                   for il in self.placement.interlinks.values())
        before, self._quiet_since = self._quiet_since, (statuses, sent)
        if before is None:
            return False
        return before[1] == sent and all(statuses[n] > before[0].get(n, -1) for n in statuses)

    # -- stopping -----------------------------------------------------------

    def stop(self) -> None:
        """Stops every worker, gathering its final report; a worker that
        fails while stopping (an app's ``stop()`` raising, a packet misused
        there) is kept in ``failure`` unless one failed before."""
        for handle in self.handles.values():
            try:
                handle.process.channel.send({"op": "stop"})
            except ChannelClosed:
                pass
        for handle in self.handles.values():
            self._stop_worker(handle, sent=True)
            self.failure = self.failure or handle.failure

    def _stop_worker(self, handle: Handle, sent: bool = False) -> None:
        if not sent:
            try:
                handle.process.channel.send({"op": "stop"})
            except ChannelClosed:
                pass
        if handle.stopped is None and handle.failure is None:
            self._await(handle, "stopped")
        if handle.status is None:
            try:
                handle.status = handle.process.wait(ANSWER_SECONDS)
            except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: kill it
                handle.process.kill()
                handle.status = handle.process.wait()
        self._read(handle, until_closed=True)  # a failed worker's accounts come last
        registry.remove_process_dir(handle.process.pid)  # a killed worker leaves its own
        handle.process.channel.close()

    def close(self) -> None:
        """Removes every ring (the records left in it counted as discarded)."""
        if not self.ring_dir.exists():
            return
        for il in self.placement.interlinks.values():
            self.retired[il.spec] = _retire(il.path)
        shutil.rmtree(self.ring_dir, ignore_errors=True)

    def ring_counters(self) -> dict[str, dict[str, int]]:
        """The counters of every ring in use, by link spec."""
        return {key: _ring_counters(il.path) for key, il in self.placement.interlinks.items()}

    def packets_left(self) -> dict[str, int]:
        """Each worker's packets allocated and not freed once it stopped
        (0 everywhere when nothing leaked)."""
        return {n: h.stopped["packets"]["allocated"] - h.stopped["packets"]["freed"]
                for n, h in self.handles.items() if h.stopped}

    def lost_packets(self) -> dict[str, dict[str, tuple[int, int]]]:
        """What each stopped worker's accounts say its apps lost (those
        stopped by a configure too): worker -> app -> (packets lost, packets
        it had received from links). Only workers whose apps lost some."""
        out: dict[str, dict[str, tuple[int, int]]] = {}
        for h in [*self.left, *self.handles.values()]:
            received = (h.stopped or {}).get("received") or {}
            for app, count in ((h.stopped or {}).get("lost") or {}).items():
                before = out.setdefault(h.name, {}).get(app, (0, 0))
                out[h.name][app] = (before[0] + count, before[1] + received.get(app, 0))
        return out


def _read_status(pid: int) -> dict[str, int] | None:
    from snabbpy.workers.child import STATUS_FILE

    try:
        return counter.read(registry.process_dir(pid) / STATUS_FILE)
    except (OSError, ValueError):
        return None


def _ring_counters(path: Path) -> dict[str, int]:
    try:
        return interlink.read_counters(path)
    except interlink.InterlinkError:
        return {}


def _retire(path: Path) -> dict[str, int]:
    """Discards what is left in a ring no one uses any more, then removes
    it; returns its last counters."""
    try:
        ring = interlink.Ring(path)
    except interlink.InterlinkError:
        return {}
    try:
        ring.discard()
        return ring.counters()
    finally:
        ring.close()
        path.unlink(missing_ok=True)
