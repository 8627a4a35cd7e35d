"""`snabbpy exporter`: serves every running snabbpy process's counters to
Prometheus until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal

import click

from snabbpy.metrics import server


@click.command()
@click.option("--listen", default="127.0.0.1:9100", show_default=True, metavar="HOST:PORT",
              help="Address to serve /metrics on (port 0: any free port).")
def exporter(listen: str) -> None:
    """Serve the counters of every running snabbpy process (links, apps,
    engine) in Prometheus's text format on http://HOST:PORT/metrics."""
    httpd = server.bind(listen)

    def stop(*_) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    click.echo(f"snabbpy exporter: serving {server.url(httpd)}", err=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
