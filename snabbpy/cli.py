"""The `snabbpy` command."""

from __future__ import annotations

import importlib
import json
import math
import os
import signal
import sys
from pathlib import Path

import click

from snabbpy.core.config import ConfigError
from snabbpy.metrics.command import exporter
from snabbpy.top import ps, top
from snabbpy.vm.cli import vm


class Snabbpy(click.Group):
    """A group that turns a user's mistake (ConfigError) into one line on
    stderr and exit status 2, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"snabbpy: error: {exc}", err=True)
            ctx.exit(2)


def _duration(ctx: click.Context, param: click.Parameter, value: float | None):
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"{value} is not a positive number of seconds")
    return value


#: Shortest --report-interval: a load line every breath helps no one.
MIN_REPORT_INTERVAL = 0.01


def _report_interval(ctx: click.Context, param: click.Parameter, value: float):
    if not math.isfinite(value) or value < 0 or 0 < value < MIN_REPORT_INTERVAL:
        raise click.BadParameter(
            f"{value}: give 0 (no load lines) or at least {MIN_REPORT_INTERVAL} seconds"
        )
    return value


def check_output_file(option: str, path: str | None) -> None:
    """Refuses, before anything runs, a file that cannot be written: its
    directory does not exist, or it is a directory."""
    if path is None:
        return
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise ConfigError(f"{option} {path}: no such directory {str(parent)!r}")
    if Path(path).is_dir():
        raise ConfigError(f"{option} {path}: is a directory")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{option} {path}: directory {str(parent)!r} is not writable")


@click.group(cls=Snabbpy)
@click.version_option(package_name="snabbpy")
def main() -> None:
    """Snabb-style packet processing in Python."""


@main.command()
@click.argument("config_file", metavar="CONFIG.yaml", type=click.Path(dir_okay=False))
@click.option("--duration", type=float, callback=_duration,
              help="Seconds to run (default: until Ctrl-C).")
@click.option("--report-interval", type=float, default=1.0, show_default=True,
              callback=_report_interval, help="Seconds between load lines (0: none).")
@click.option("--report-json", type=click.Path(dir_okay=False),
              help="Write the final counters to this file as JSON.")
@click.option("--busywait", is_flag=True,
              help="Never nap when idle: lowest latency, one core kept busy.")
@click.option("--metrics", metavar="HOST:PORT",
              help="Also serve Prometheus metrics on http://HOST:PORT/metrics (a thread).")
def run(config_file: str, duration: float | None, report_interval: float,
        report_json: str | None, busywait: bool, metrics: str | None) -> None:
    """Run the graph in CONFIG.yaml: until --duration, Ctrl-C or SIGTERM,
    or until its finite inputs (pcap files) are exhausted."""
    from snabbpy.core import config, registry
    from snabbpy.core.accounting import PacketFault
    from snabbpy.core.engine import AppError, Engine
    from snabbpy.core.report import LoadReporter, app_error_text

    check_output_file("--report-json", report_json)
    c = config.load_yaml(config_file)
    for warning in config.warnings(c):
        click.echo(f"snabbpy: warning: {warning}", err=True)
    if metrics:
        from snabbpy.metrics import server

        httpd = server.bind(metrics, option="--metrics")
        server.serve_in_thread(httpd)
        click.echo(f"metrics: serving {server.url(httpd)}", err=True)
    from snabbpy.workers import placement

    if placement.uses_workers(c) or c.workers:
        from snabbpy.workers.run import run as run_workers

        return run_workers(c, config_file, duration, report_interval, report_json, busywait)
    engine = Engine(publish=True, busywait=busywait)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, lambda *_: engine.request_stop())
    failed: BaseException | None = None
    counters = None
    try:
        try:
            engine.configure(c)
            registry.write_process_info(config_file)
            load = LoadReporter(engine)
            engine.main(duration=duration, done=engine.finished,
                        report_interval=report_interval or None,
                        on_report=lambda: click.echo(load.line()))
        except ConfigError as exc:
            raise ConfigError(f"{config_file}: {exc}") from None
        except (AppError, PacketFault) as exc:
            failed = exc
        except OSError as exc:
            if exc.filename and str(exc.filename).startswith(str(registry.shm_root())):
                raise ConfigError(
                    f"cannot publish counters in {registry.shm_root()}: {exc.strerror} "
                    "(set SNABBPY_SHM to a writable directory)"
                ) from None
            raise
        counters = _final_report(engine)
    finally:
        try:
            engine.stop()
        except (AppError, PacketFault) as exc:
            failed = failed or exc
        except OSError:
            pass
    if counters is not None:
        _lost_report(engine, counters, report_json)
    if failed is not None:
        click.echo(app_error_text(failed), err=True)
        sys.exit(1)


def _final_report(engine) -> dict:
    """The link and app report on stdout; returns the counters for
    --report-json (taken now: links are gone once the engine stops)."""
    from snabbpy.core.report import app_report, link_report

    click.echo(link_report(engine))
    apps = app_report(engine)
    if apps:
        click.echo(apps)
    return engine.counters()


def _lost_report(engine, counters: dict, report_json: str | None) -> None:
    """Once every app has stopped: one line per app that lost packets, and
    the counters with them ("lost_packets") to --report-json."""
    from snabbpy.core.accounting import lost_line

    for name, count in engine.lost.items():
        line = lost_line(name, count, engine.accounts.received.get(name, 0))
        click.echo(f"snabbpy: warning: {line}", err=True)
    if report_json:
        counters["lost_packets"] = dict(engine.lost)
        Path(report_json).write_text(json.dumps(counters, indent=2) + "\n")


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("module")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def selftest(module: str, args: tuple[str, ...]) -> None:
    """Run selftest() of snabbpy.MODULE (e.g. core.link, apps.basic); ARGS
    go to the selftest (e.g. apps.vguest --pci 0000:00:05.0)."""
    # The user names the module, as a graph names its app classes: the one
    # import by name here, beside config's class loader.
    try:
        mod = importlib.import_module(f"snabbpy.{module}")
    except ModuleNotFoundError as exc:
        raise ConfigError(f"selftest {module!r}: no module {exc.name!r}") from None
    test = getattr(mod, "selftest", None)
    if test is None:
        raise ConfigError(f"selftest {module!r}: snabbpy.{module} has no selftest()")
    try:
        status = test(*args)
    except AssertionError as exc:
        click.echo(f"selftest {module}: FAILED: {exc}", err=True)
        sys.exit(1)
    if isinstance(status, int) and status:
        sys.exit(status)


@main.command()
@click.argument("name", type=click.Choice(["basic1"]))
@click.option("--packets", default="100e6", show_default=True,
              help="Packets the source sends (30e6, 1e9, 5000000 or 0x1000, as snabbmark).")
@click.option("--size", type=int, default=60, show_default=True, help="Packet size.")
def bench(name: str, packets: str, size: int) -> None:
    """Run a benchmark and print its rate."""
    from snabbpy import bench as benchmarks

    sent, seconds = benchmarks.basic1(benchmarks.parse_count("--packets", packets), size)
    click.echo(benchmarks.format_rate(sent, seconds))


@main.command()
@click.argument("config_file", metavar="CONFIG.yaml", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["dot", "png", "svg"]), default="dot",
              show_default=True, help="dot text, or an image rendered by Graphviz.")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="File to write (default: standard output).")
@click.option("--pid", type=int, help="Label links with the packet counts of this process.")
def graph(config_file: str, fmt: str, output: str | None, pid: int | None) -> None:
    """Draw the graph in CONFIG.yaml: Graphviz dot, or PNG/SVG via dot."""
    from snabbpy.core import config
    from snabbpy.graph import RenderError, render, running_link_counters, to_dot

    check_output_file("--output", output)
    c = config.load_yaml(config_file)
    try:
        dot = to_dot(c, running_link_counters(pid) if pid is not None else None)
        data = dot.encode() if fmt == "dot" else render(dot, fmt)
    except RenderError as exc:
        raise click.ClickException(str(exc)) from None
    if output:
        Path(output).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)


# Commands defined in the packages they drive.
for command in (vm, top, ps, exporter):
    main.add_command(command)
