"""Serves the counters of every running snabbpy process to Prometheus over
HTTP (the standard library's ThreadingHTTPServer): ``/metrics`` is the
scrape, ``/`` a pointer to it. Each scrape reads shared memory only."""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from snabbpy.core.config import ConfigError
from snabbpy.metrics import collect, exposition


def parse_listen(text: str, option: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; PORT 0 picks a free one) ->
    (host, port); a ConfigError names ``option`` and what is wrong."""
    host, colon, port = text.rpartition(":")
    if not colon or not host:
        raise ConfigError(f"{option} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9100")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(f"{option} {text!r}: {host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ConfigError(f"{option} {text!r}: write an IPv6 address in brackets, [::1]:9100")
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ConfigError(f"{option} {text!r}: port {port!r} is not a number from 0 to 65535")
    return host, int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow client never keeps the process alive

    def __init__(self, address: tuple[str, int], render: Callable[[], str]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.render = render
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, exposition.CONTENT_TYPE, self.server.render().encode())
        elif path == "/":
            self._reply(200, "text/html; charset=utf-8",
                        b'<html><body><a href="/metrics">/metrics</a></body></html>\n')
        else:
            self._reply(404, "text/plain; charset=utf-8", b"not found: try /metrics\n")

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass  # a scrape every few seconds is not news


def scrape() -> str:
    """One scrape's text: every running snabbpy process's counters."""
    return exposition.render(collect.read_all())


def bind(listen: str, render: Callable[[], str] = scrape,
         option: str = "--listen") -> ThreadingHTTPServer:
    """A server bound to ``listen`` (HOST:PORT), not yet serving; a bad
    address, a port in use or one not allowed is a ConfigError naming
    ``option``."""
    address = parse_listen(listen, option)
    try:
        return _Server(address, render)
    except OSError as exc:
        why = {errno.EADDRINUSE: "address already in use",
               errno.EADDRNOTAVAIL: "address not available on this machine",
               errno.EACCES: "permission denied"}.get(exc.errno, exc.strerror or str(exc))
        raise ConfigError(f"{option} {listen}: {why}") from None


def url(server: ThreadingHTTPServer) -> str:
    """Where ``server`` serves the scrape."""
    host, port = server.server_address[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    """Serves from a daemon thread (``snabbpy run --metrics``): it sleeps
    in select() between scrapes, so the graph's thread keeps the GIL."""
    thread = threading.Thread(target=server.serve_forever, name="snabbpy-metrics",
                              daemon=True)
    thread.start()
    return thread
