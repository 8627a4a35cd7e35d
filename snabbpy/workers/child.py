"""What a worker process runs: ``python -P -m snabbpy.workers.child
--control FD --name NAME`` (started by the supervisor, never by hand).

It reads its orders from the control channel: ``start`` (the whole graph
as data, the ring directory, the import path, its cpu), ``configure`` (a
new graph), ``stop``. It runs its part of the graph in an engine that
publishes counters like any snabbpy process, keeps a status file
(``quiet``: nothing to do; ``checks``: how often it looked) for the
supervisor to tell when the whole graph is finished, and answers
``ready``, ``configured``, ``report`` (counters and app reports),
``stopped`` (its packet counts, and the packets each app lost: the
engine's accounts, taken once it stopped) or ``failed`` (what raised, in
which app; a misused packet, PacketFault, named as in one process).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import socket
import sys
import threading
import traceback
from pathlib import Path

from snabbpy.core import config, packet, registry
from snabbpy.core.accounting import PacketFault
from snabbpy.core.config import ConfigError
from snabbpy.core.counter import Counters
from snabbpy.core.engine import AppError, Engine
from snabbpy.core.timer import Timer
from snabbpy.workers import placement
from snabbpy.workers.channel import Channel, ChannelClosed

STATUS_FILE = "worker"
STATUS = ("quiet", "checks")
#: How often the status file is refreshed, in nanoseconds.
STATUS_NS = 1_000_000
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Asks the kernel for SIGTERM when the supervisor dies (best effort)."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def app_texts(engine: Engine) -> dict[str, str]:
    """Each app's own ``report()``, for the supervisor's app report."""
    texts = {}
    for name, app in engine.apps.items():
        if hasattr(app, "report"):
            text = app.report()
            if text:
                texts[name] = str(text)
    return texts


def user_frames(exc: BaseException) -> str:
    """The frames of the user's code in the traceback of an app's error."""
    here = str(Path(__file__).resolve().parent.parent)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(here)]
    return "".join(traceback.format_list(frames)).rstrip()


class Worker:
    """One worker's engine and its orders."""

    def __init__(self, name: str, channel: Channel) -> None:
        self.name = name
        self.channel = channel
        self.engine: Engine | None = None
        self.status: Counters | None = None
        self.orders: list[dict] = []
        self.lock = threading.Lock()
        self.ring_dir = Path()
        self._timer: Timer | None = None
        self._stopped = False

    def listen(self) -> None:
        """Thread: queues every order and wakes the engine; end of file
        (the supervisor is gone) is an order to stop."""
        while True:
            try:
                messages = self.channel.receive(timeout=None)
            except ChannelClosed:
                messages = [{"op": "stop"}]
            with self.lock:
                self.orders += messages
            if self.engine is not None:
                self.engine.request_stop()
            if any(m.get("op") == "stop" for m in messages):
                return

    def next_order(self) -> dict | None:
        with self.lock:
            return self.orders.pop(0) if self.orders else None

    def part(self, doc: dict) -> config.Config:
        """This worker's graph out of the whole graph ``doc``."""
        return placement.part_of(doc, self.name, self.ring_dir)

    def start(self, order: dict) -> None:
        for directory in order.get("path", []):
            if directory not in sys.path:
                sys.path.append(directory)
        cpu = order.get("cpu")
        cpus = {cpu} if cpu is not None else set(order.get("cpus") or ())
        if cpus:  # not main's, which may be pinned since
            os.sched_setaffinity(0, cpus)
        self.ring_dir = Path(order["ring_dir"])
        self.engine = Engine(publish=True, busywait=bool(order.get("busywait")),
                             worker=self.name)
        self.engine.configure(self.part(order["doc"]))
        self._publish_info(order)
        self.status = Counters(STATUS, registry.process_dir() / STATUS_FILE)
        self._watch()

    def _publish_info(self, order: dict) -> None:
        path = registry.write_process_info(order.get("config_file"))
        info = json.loads(path.read_text())
        info.update(worker=self.name, supervisor=os.getppid())
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info) + "\n")
        tmp.replace(path)

    def _watch(self) -> None:
        engine, status = self.engine, self.status

        def look() -> None:
            status["quiet"] = int(engine.finished() or not engine.apps)
            status.add("checks")
        if self._timer is not None:
            self._timer.cancel()
        self._timer = engine.activate_timer(Timer(name="worker-status", fn=look,
                                                  delay_ns=STATUS_NS, repeating=True))

    def run(self) -> int:
        """Obeys orders until ``stop``; returns the exit status."""
        while True:
            order = self.next_order()
            if order is None:
                self.engine.main()
                continue
            op = order.get("op")
            if op == "configure":
                self.engine.configure(self.part(order["doc"]))
                self._watch()
                self.channel.send({"op": "configured", "seq": order.get("seq")})
            elif op == "stop":
                return self.finish()

    def finish(self) -> int:
        engine = self.engine
        self.channel.send({"op": "report", "counters": engine.counters(),
                           "texts": app_texts(engine)})
        self.stop_engine()
        self.status.close()
        self.channel.send(self.stopped())
        return 0

    def stop_engine(self) -> None:
        """Stops the engine, once: its accounts (``engine.lost``) are
        taken then and would be empty a second time."""
        if self.engine is not None and not self._stopped:
            self._stopped = True
            self.engine.stop()

    def stopped(self) -> dict:
        """The ``stopped`` message: packet counts, and the packets each app
        lost with what it had received (for the supervisor's lost lines)."""
        lost = dict(self.engine.lost) if self.engine is not None else {}
        received = self.engine.accounts.received if self.engine is not None else {}
        return {"op": "stopped", "packets": packet.stats(),
                "double_frees": packet.double_frees(), "lost": lost,
                "received": {n: received.get(n, 0) for n in lost}}


def main(argv: list[str] | None = None) -> int:
    """The worker process: see the module's docstring."""
    parser = argparse.ArgumentParser(prog="snabbpy.workers.child")
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
    channel = Channel(socket.socket(fileno=args.control))
    worker = Worker(args.name, channel)
    signal.signal(signal.SIGTERM, lambda *_: worker.orders.append({"op": "stop"})
                  or (worker.engine and worker.engine.request_stop()))
    try:
        first = channel.receive(timeout=None)
        worker.orders += first[1:]
        worker.start(first[0])
        threading.Thread(target=worker.listen, daemon=True).start()
        channel.send({"op": "ready", "pid": os.getpid()})
        return worker.run()
    except (AppError, ConfigError, PacketFault) as exc:
        frames = user_frames(exc.error) if isinstance(exc, AppError) else ""
        kind = ("app" if isinstance(exc, AppError) else
                "config" if isinstance(exc, ConfigError) else "fault")
        _send_quietly(channel, {"op": "failed", "error": str(exc), "frames": frames,
                                "kind": kind})
        _stop_quietly(worker)
        _send_quietly(channel, worker.stopped())
        return 1
    except ChannelClosed:
        _stop_quietly(worker)
        return 1


def _send_quietly(channel: Channel, message: dict) -> None:
    try:
        channel.send(message)
    except ChannelClosed:
        pass


def _stop_quietly(worker: Worker) -> None:
    """Stops the engine after a failure: frees what it can, removes its
    counter files; a second failure there is not reported over the first."""
    try:
        worker.stop_engine()
        if worker.status is not None:
            worker.status.close()
    except Exception:  # noqa: BLE001 - the first failure is the one reported
        registry.remove_process_dir()


if __name__ == "__main__":
    sys.exit(main())
