"""Throwaway network namespaces joined by veth, for selftests and tests.

``veth_pair()`` makes two namespaces with a veth link between them, each
end up and addressed, and removes both namespaces (and so the link) when
the ``with`` block ends, whatever happens in it::

    with netns.veth_pair() as (a, b):
        netns.run(a, ["ping", "-c1", b.address])
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class End:
    """One side of a veth pair: its namespace, interface and IPv4 address."""

    netns: str
    ifname: str
    address: str


def ip(*args: str) -> None:
    """Runs ``ip ARGS``; raises RuntimeError with ip's message on failure."""
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")


def command(netns: str, argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` inside namespace ``netns``."""
    return ["ip", "netns", "exec", netns, *argv]


def run(end: End | str, argv: Sequence[str], **kw) -> subprocess.CompletedProcess:
    """Runs ``argv`` in a namespace, checked, output captured as text."""
    ns = end.netns if isinstance(end, End) else end
    return subprocess.run(command(ns, argv), check=True, capture_output=True, text=True, **kw)


@contextmanager
def namespace(name: str) -> Iterator[str]:
    """A new namespace with its loopback up, deleted on exit."""
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        # No IPv6 autoconfiguration chatter: only the test's own frames.
        for conf in ("all", "default"):
            subprocess.run(command(name, ["sysctl", "-qw",
                                          f"net.ipv6.conf.{conf}.disable_ipv6=1"]),
                           capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@contextmanager
def veth_pair(prefix: str = "snabbpy", mtu: int = 1500,
              address_a: bool = True) -> Iterator[tuple[End, End]]:
    """Two new namespaces ``<prefix>-a-PID`` and ``-b-PID`` joined by veth
    (``veth-a`` 10.77.0.1/24 unless not ``address_a``, ``veth-b``
    10.77.0.2/24), both up."""
    tag = f"{os.getpid()}"
    a = End(f"{prefix}-a-{tag}", "veth-a", "10.77.0.1")
    b = End(f"{prefix}-b-{tag}", "veth-b", "10.77.0.2")
    with namespace(a.netns), namespace(b.netns):
        ip("-n", a.netns, "link", "add", a.ifname, "mtu", str(mtu), "type", "veth",
           "peer", "name", b.ifname, "netns", b.netns)
        for end in (a, b):
            ip("-n", end.netns, "link", "set", end.ifname, "mtu", str(mtu))
            if end is b or address_a:
                ip("-n", end.netns, "addr", "add", f"{end.address}/24", "dev", end.ifname)
            ip("-n", end.netns, "link", "set", end.ifname, "up")
        yield a, b
