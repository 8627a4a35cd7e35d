"""The engine: runs a graph of apps by breathing.

``configure(c)`` turns the running graph into ``c`` with the fewest
changes (see ``diff``); ``breathe()`` runs one round: every ``pull()``,
then every ``push()`` upstream first, then due timers (ticks among them);
``main()`` breathes until done, sleeping when idle (see ``main``).
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from snabbpy.core import accounting, diff, interlink, linktypes, memory, order, registry
from snabbpy.core import config as config_mod
from snabbpy.core.app import counter_names
from snabbpy.core.config import Config, ConfigError
from snabbpy.core.counter import Counters
from snabbpy.core.engine_stats import SYNC_BREATHS, EngineStats
from snabbpy.core.link import COUNTERS as LINK_COUNTERS
from snabbpy.core.link import Link
from snabbpy.core.native import lib
from snabbpy.core.timer import Timer, Timers

#: Longest nap of an idle engine, in microseconds.
MAX_SLEEP_US = 100
#: Longest sleep of an idle engine that waits for its interlinks, in microseconds.
MAX_WAIT_US = 10_000
PR_SET_TIMERSLACK = 29


def precise_naps() -> None:
    """Makes this process's short sleeps as short as asked: Linux lets a
    sleep overrun by the timer slack (50 us by default), time in which a
    guest fills a ring. Best effort: without prctl it stays as it was."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(1000), 0, 0, 0)  # 1 us
    except (OSError, AttributeError):
        pass


class AppError(Exception):
    """A user's app raised: which app (name, class), in which method, and
    the exception it raised (``__cause__``)."""

    def __init__(self, app: str, cls: str, method: str, exc: BaseException) -> None:
        super().__init__(f"app {app!r} ({cls}) failed in {method}(): "
                         f"{type(exc).__name__}: {exc}")
        self.app, self.cls, self.method, self.error = app, cls, method, exc


def _blame(exc: BaseException, apps: dict[str, Any], method: str) -> AppError:
    """The AppError for ``exc`` raised in ``method`` of one of ``apps``: the
    innermost frame of the traceback that runs that method on an app."""
    tb, found = exc.__traceback__, None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name in ("pull", "push", "tick"):
            owner = frame.f_locals.get("self")
            for name, app in apps.items():
                if app is owner:
                    found = (name, frame.f_code.co_name)
        tb = tb.tb_next
    if found is None:
        return AppError("?", "?", method, exc)
    name, meth = found
    return AppError(name, type(apps[name]).__name__, meth, exc)


class Engine:
    """Runs apps and links. ``clock`` returns nanoseconds (inject a fake one
    in tests); ``publish`` puts counters in shared memory for ``snabbpy top``;
    ``worker`` is the worker process it runs in (None: the main process,
    which runs no other worker's apps)."""

    def __init__(
        self,
        clock: Callable[[], int] = time.monotonic_ns,
        tick_hz: int = 1000,
        publish: bool = False,
        busywait: bool = False,
        worker: str | None = None,
    ) -> None:
        self.clock = clock
        self.worker = worker
        self.tick_hz = tick_hz
        self.busywait = busywait
        self.shm_dir: Path | None = registry.process_dir() if publish else None
        self.config: Config = config_mod.new()
        self.apps: dict[str, Any] = {}
        self.links: dict[str, Link] = {}
        self.timers = Timers()
        self.now = clock()
        self.breaths = 0
        self.naps = 0  # times main() slept while idle
        self.nap_us = 0  # microseconds it asked to sleep, in all
        self._stats: EngineStats | None = None
        self.stop_requested = False
        self._pulls: list[Callable[[], Any]] = []
        self._producing: list[Callable[[], bool]] = []
        self._pushes: list[Callable[[], Any]] = []
        self._tick_timer: Timer | None = None
        self._waiter: interlink.Waiter | None = None
        self._patient = False  # may sleep until an interlink or a timer wakes it
        self.accounts = accounting.Accounts()
        self.lost: dict[str, int] = {}  # after stop(): packets each app lost

    # -- configuration --------------------------------------------------

    def configure(self, new: Config) -> diff.Plan:
        """Makes the running graph ``new``: stops, starts and reconfigures
        apps and adds and removes links as the difference demands. Apps and
        links in both keep running, with their packets."""
        config_mod.check(new)
        config_mod.check_worker(new, self.worker)
        can_reconfig = {n for n, a in self.apps.items() if hasattr(a, "reconfig")}
        plan = diff.plan(self.config, new, can_reconfig)
        self._choose_dma_memory(new, plan.start)
        for name in plan.stop:
            self._stop_app(name)
        for spec in plan.unlink:
            link = self.links.pop(spec)
            self.accounts.drain(self.config.links[spec], link)
            link.counters.close()
        for spec in plan.link:
            self.links[spec] = Link(spec, self._counters("links", spec, LINK_COUNTERS))
        for name in plan.start:
            self._start_app(name, new.apps[name])
        for name in plan.reconfig:
            self._call_app(name, "reconfig", new.apps[name].conf)
        self.config = new
        self._connect(set(plan.start))
        linktypes.check(self.apps, new.links)
        self._schedule()
        return plan

    @staticmethod
    def _choose_dma_memory(new: Config, starting: list[str]) -> None:
        """Lets apps that drive devices choose the process's DMA memory
        (``dma_backend(conf)`` on their class) before any packet exists."""
        for name in starting:
            choose = getattr(new.apps[name].cls, "dma_backend", None)
            backend = choose(new.apps[name].conf) if choose else None
            if backend is not None:
                try:
                    memory.set_backend(backend)
                except RuntimeError as exc:
                    raise ConfigError(f"app {name!r}: {exc}") from None

    def _counters(self, kind: str, name: str, names: tuple[str, ...]) -> Counters:
        path = self.shm_dir / kind / registry.safe_name(name) if self.shm_dir else None
        return Counters(names, path)

    def _start_app(self, name: str, spec: config_mod.AppSpec) -> None:
        cls = spec.cls
        app = cls.__new__(cls)
        app.name = name
        app.stats = self._counters("apps", name, counter_names(cls, spec.conf))
        app.input, app.output = {}, {}
        self.apps[name] = app
        self._call_app(name, "__init__", spec.conf)

    def _stop_app(self, name: str) -> None:
        app = self.apps[name]
        if hasattr(app, "stop"):
            self._call_app(name, "stop")
        del self.apps[name]
        if isinstance(getattr(app, "stats", None), Counters):
            app.stats.close()

    def _call_app(self, name: str, method: str, *args: Any) -> Any:
        app = self.apps[name]
        try:
            with self.accounts.acting(name):
                return getattr(app, method)(*args)
        except ConfigError as exc:
            raise ConfigError(f"app {name!r}: {exc}") from None
        except Exception as exc:
            raise AppError(name, type(app).__name__, method, exc) from exc

    def _connect(self, new_apps: set[str]) -> None:
        """Gives every app its input and output links; calls ``link()`` on
        the apps whose ports changed."""
        ports: dict[str, tuple[dict, dict]] = {n: ({}, {}) for n in self.apps}
        for spec, ls in self.config.links.items():
            ports[ls.from_app][1][ls.from_port] = self.links[spec]
            ports[ls.to_app][0][ls.to_port] = self.links[spec]
        for name, (inputs, outputs) in ports.items():
            app = self.apps[name]
            if name in new_apps or app.input != inputs or app.output != outputs:
                app.input, app.output = inputs, outputs
                if hasattr(app, "link"):
                    self._call_app(name, "link")

    def _schedule(self) -> None:
        """Works out what each breath calls, in which order."""
        names = order.push_order(self.apps, self.config.links.values())
        as_app = self.accounts.as_app
        self._pulls = [as_app(n, a.pull) for n, a in self.apps.items() if hasattr(a, "pull")]
        self._producing = [self._producer(a) for a in self.apps.values()
                           if hasattr(a, "producing") or hasattr(a, "pull")]
        self._pushes = [as_app(n, self.apps[n].push) for n in names
                        if hasattr(self.apps[n], "push")]
        ticks = [as_app(n, a.tick) for n, a in self.apps.items() if hasattr(a, "tick")]
        if self._tick_timer:
            self._tick_timer.cancel()
            self._tick_timer = None
        if ticks:
            def tick_all() -> None:
                for t in ticks:
                    t()
            timer = Timer(name="ticks", fn=tick_all, delay_ns=10**9 // self.tick_hz, repeating=True)
            self._tick_timer = self.timers.activate(timer, self.now)
        waits = [w for a in self.apps.values() if hasattr(a, "wake_on") for w in a.wake_on()]
        self._waiter = interlink.Waiter(waits) if waits else None
        self._patient = bool(waits) and all(getattr(a, "links_only", False)
                                            for a in self.apps.values())

    @staticmethod
    def _producer(app: Any) -> Callable[[], bool]:
        """"Can this app produce more?" (see core/app.py)."""
        if hasattr(app, "producing"):
            return app.producing
        if hasattr(app, "done"):
            return lambda: not app.done
        return lambda: True

    # -- running ----------------------------------------------------------

    def breathe(self) -> None:
        """One round: all pulls, then all pushes, then due timers. An app
        that raises stops the breath with an ``AppError`` naming it."""
        self.now = self.clock()
        method = "pull"
        try:
            for pull in self._pulls:
                pull()
            method = "push"
            for push in self._pushes:
                push()
            method = "tick"
            due = self.timers.next_due()
            if due is not None and due <= self.now:
                self.timers.run_due(self.now)
        except (AppError, ConfigError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise _blame(exc, self.apps, method) from exc
        if accounting.alarm[0]:
            self.accounts.check(self)  # a misused packet, memory exhausted
        self.breaths += 1

    def activate_timer(self, timer: Timer) -> Timer:
        """Runs ``timer`` once its delay has passed (on the engine's clock)."""
        return self.timers.activate(timer, self.now)

    def main(
        self,
        duration: float | None = None,
        done: Callable[[], bool] | None = None,
        report_interval: float | None = None,
        on_report: Callable[[], Any] | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        """Breathes until ``duration`` seconds have passed, ``done()`` is
        true or ``request_stop()`` was called. Every ``report_interval``
        seconds calls ``on_report()``.

        After a breath that moved no packet (idle) it sleeps, unless the
        engine busy-waits: a nap of 1 us more after each idle breath, up to
        ``MAX_SLEEP_US`` (Snabb's engine does the same); in a process that
        ends interlinks, twice as long each time and cut short when one of
        them gets records or room. When every app is ``links_only``
        (core/app.py) and the process ends interlinks, nothing can change
        but what other processes do and timers, so it sleeps until an
        interlink wakes it, the next timer, the next report or the end, at
        most ``MAX_WAIT_US``: a process behind a full ring or waiting for
        records costs no CPU."""
        if not self.busywait:
            precise_naps()
        start = self.now = self.clock()
        deadline = start + int(duration * 1e9) if duration is not None else None
        interval = int(report_interval * 1e9) if report_interval else None
        next_report = start + interval if interval else None
        nap_us = 0
        if self.shm_dir and self._stats is None:
            self._stats = EngineStats(self.shm_dir)
        stats = self._stats
        while not self.stop_requested:
            before = lib.link_progress()
            self.breathe()
            if stats is not None and not self.breaths % SYNC_BREATHS:
                stats.sync(self.breaths, self.naps, self.nap_us)
            if done is not None and done():
                break
            if deadline is not None and self.now >= deadline:
                break
            if next_report is not None and self.now >= next_report:
                next_report += interval
                if on_report:
                    on_report()
            if lib.link_progress() != before or self.busywait:
                nap_us = 0
            elif not (self._patient and self._wait(self._patience(deadline, next_report))):
                # Woken by its interlinks anyway, an engine that ends some
                # doubles its naps: each costs ~20 us of CPU however short.
                nap_us = min((nap_us * 2 or 1) if self._waiter else nap_us + 1, MAX_SLEEP_US)
                if not self._wait(nap_us * 1000):
                    self.naps += 1
                    self.nap_us += nap_us
                    sleep(nap_us / 1e6)
        if stats is not None:
            stats.sync(self.breaths, self.naps, self.nap_us)
        self.stop_requested = False

    def _wait(self, ns: int) -> bool:
        """Sleeps up to ``ns`` on the interlinks (counted as a nap); False
        when there are none to wait on or the kernel cannot wait on them."""
        if self._waiter is None:
            return False
        got = self._waiter.wait(ns)
        if got in (0, 2):
            self.naps += 1
            self.nap_us += ns // 1000
        return got >= 0

    def _patience(self, deadline: int | None, next_report: int | None) -> int:
        """Nanoseconds an idle patient engine may sleep: up to the next
        timer, report or the end, at most ``MAX_WAIT_US``."""
        until = self.now + MAX_WAIT_US * 1000
        for t in (self.timers.next_due(), deadline, next_report):
            if t is not None and t < until:
                until = t
        return max(until - self.clock(), 0)

    def finished(self) -> bool:
        """True when the graph has nothing more to do: no app can produce
        more (``producing()``, or ``done`` on an app that pulls: see
        core/app.py) and no packet waits on a link. A graph with a live
        source never finishes; nor does one with no source at all."""
        if not self._producing:
            return False
        if any(producing() for producing in self._producing):
            return False
        return all(link.empty() for link in self.links.values())

    def request_stop(self) -> None:
        """Asks ``main()`` to return after the current breath (or at once,
        when it is not running yet). Safe to call from a signal handler."""
        self.stop_requested = True

    def stop(self) -> None:
        """Stops every app and frees every link: an empty graph. An app whose
        ``stop()`` raises does not keep the others from stopping; the first
        such error is raised once all are stopped. Then ``lost`` holds the
        packets each app lost (core/accounting.py)."""
        failed: AppError | None = None
        for name in list(self.apps):
            try:
                self._stop_app(name)
            except AppError as exc:
                failed = failed or exc
                self.apps.pop(name, None)
        self.config = Config(apps={}, links=dict(self.config.links))
        try:
            self.configure(config_mod.new())
            if accounting.alarm[0]:
                self.accounts.check(self)
        finally:
            self.lost = self.accounts.close()
            if self._stats is not None:
                self._stats.close()
                self._stats = None
            if self.shm_dir:
                registry.remove_process_dir()
        if failed:
            raise failed

    # -- reports ----------------------------------------------------------

    def counters(self) -> dict[str, dict]:
        """All counters: ``{"links": {spec: {...}}, "apps": {name: {...}}}``."""
        return {
            "links": {spec: link.stats() for spec, link in self.links.items()},
            "apps": {
                name: app.stats.snapshot() if isinstance(getattr(app, "stats", None), Counters)
                else {}
                for name, app in self.apps.items()
            },
        }

    def packets_held(self) -> int:
        """Packets sitting on links now."""
        return sum(link.nreadable() for link in self.links.values())


@contextmanager
def running_in_thread(c: Config, cpu: int | None = None, busywait: bool = False):
    """Runs graph ``c`` in a thread of its own (pinned to ``cpu`` if given)
    for the duration of a ``with`` block, which gets the engine; then stops
    it and every app. For tests and benchmarks that talk to a peer while
    the graph runs."""
    engine = Engine(busywait=busywait)
    engine.configure(c)
    stop = threading.Event()

    def run() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})  # this thread only
        engine.main(done=stop.is_set)

    thread = threading.Thread(target=run, name="snabbpy-engine")
    thread.start()
    try:
        yield engine
    finally:
        stop.set()
        thread.join(30)
        engine.stop()
