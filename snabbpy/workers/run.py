"""`snabbpy run` of a graph with workers: the supervisor around the main
engine, one load line, one report, one stop for every process."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import click

from snabbpy.core import registry
from snabbpy.core.accounting import PacketFault
from snabbpy.core.config import Config, ConfigError
from snabbpy.core.engine import AppError, Engine
from snabbpy.core.report import app_error_text, app_table, link_table
from snabbpy.workers import report
from snabbpy.workers.supervisor import Supervisor, WorkerFailed

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def run(c: Config, config_file: str, duration: float | None, report_interval: float,
        report_json: str | None, busywait: bool) -> None:
    """Runs ``c`` over its workers until ``duration``, a stop signal, a
    failed worker or the end of its finite inputs; then the report, and
    once every process stopped, the packets each app lost."""
    engine = Engine(publish=True, busywait=busywait)
    sup = Supervisor(engine, config_file=config_file, busywait=busywait)
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: engine.request_stop())
    failed: BaseException | None = None
    merged = None
    try:
        try:
            sup.configure(c)
            registry.write_process_info(config_file)
            load = report.LoadSampler(sup)
            engine.main(duration=duration, done=sup.done,
                        report_interval=report_interval or None,
                        on_report=lambda: click.echo(load.line()))
        except ConfigError as exc:
            raise ConfigError(f"{config_file}: {exc}") from None
        except (AppError, PacketFault, WorkerFailed) as exc:
            failed = exc
        sup.stop()
        failed = failed or sup.failure
        sup.close()
        merged = _final_report(sup)
    finally:
        sup.stop()
        try:
            engine.stop()
        except (AppError, PacketFault) as exc:
            failed = failed or exc
        sup.close()
    if merged is not None:
        _lost_report(sup, merged, report_json)
    if failed is not None:
        print_failure(failed)
        sys.exit(1)


def whole_graph(sup: Supervisor) -> dict:
    """The counters of the whole graph, and each worker's state."""
    rings = {**sup.ring_counters(), **sup.retired}
    merged = report.merge(sup.placement, report.worker_counters(sup), rings)
    merged["workers"] = {
        name: {"pid": h.process.pid, "cpu": h.cpu,
               "exit": h.status, "failure": str(h.failure) if h.failure else None,
               "packets": (h.stopped or {}).get("packets")}
        for name, h in sup.handles.items()}
    return merged


def _final_report(sup: Supervisor) -> dict:
    """The link and app report on stdout; returns the whole graph's
    counters for --report-json (taken now: links go when engines stop)."""
    merged = whole_graph(sup)
    click.echo(link_table(merged["links"]))
    texts: dict[str, object] = {n: a.report() for n, a in sup.engine.apps.items()
                                if hasattr(a, "report") and n in merged["apps"]}
    for h in sup.handles.values():
        texts.update((h.report or {}).get("texts", {}))
    apps = app_table(merged["apps"], {n: t for n, t in texts.items() if n in merged["apps"]})
    if apps:
        click.echo(apps)
    return merged


def _lost_report(sup: Supervisor, merged: dict, report_json: str | None) -> None:
    """Once every process stopped: a line per app that lost packets (with
    its worker), and ``lost_packets`` (app -> count, and per worker) in
    --report-json."""
    lost = report.lost(sup)
    for line in report.lost_lines(lost):
        click.echo(f"snabbpy: warning: {line}", err=True)
    merged["lost_packets"] = {app: n for apps in lost.values() for app, (n, _) in apps.items()}
    for name, w in merged["workers"].items():
        w["lost_packets"] = {app: n for app, (n, _) in lost.get(name, {}).items()}
    if report_json:
        Path(report_json).write_text(json.dumps(merged, indent=2) + "\n")


def print_failure(exc: BaseException) -> None:
    """What failed: the app and the user's frames, or the worker and what
    killed it."""
    if isinstance(exc, AppError):
        click.echo(app_error_text(exc), err=True)
        return
    click.echo(f"snabbpy: error: {exc}", err=True)
    if isinstance(exc, WorkerFailed) and exc.frames:
        click.echo(exc.frames, err=True)
