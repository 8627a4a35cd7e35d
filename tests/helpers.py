"""Helpers the tests share: links filled and drained by hand, an app wired
as the engine would, the snabbpy command, bounded waits, and the check
that root and tools are there (fail under CI, skip elsewhere)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import pytest

from snabbpy.core import packet
from snabbpy.core.link import Link

#: The snabbpy command, run by this very Python.
SNABBPY = [sys.executable, "-c", "import sys; sys.argv[0] = 'snabbpy'; "
           "from snabbpy.cli import main; main()"]


#: A user's app module (for tests of what the engine says): ``Leaky``
#: receives every packet and forgets it, neither sending it on nor freeing it.
LEAKY_APP = '''
from snabbpy.core import packet
from snabbpy.core.app import App


class Leaky(App):
    """Receives every packet and forgets it: neither sent on nor freed."""
    inputs, outputs = ("input",), ()

    def push(self):
        i = self.input["input"]
        while not i.empty():
            i.receive()
'''


#: ``USER_APPS``: ``Leaky`` and two apps that misuse packets, which C refuses:
#: ``SendThenFree`` sends each packet on, then frees it as well; ``FreeTwice``
#: frees each packet twice.
USER_APPS = LEAKY_APP + '''

class SendThenFree(App):
    """Sends each packet on, then frees it as well: the sink will free it too."""
    inputs, outputs = ("input",), ("output",)

    def push(self):
        i, o = self.input["input"], self.output["output"]
        while not i.empty():
            p = i.receive()
            o.transmit(p)
            packet.free(p)


class FreeTwice(App):
    inputs, outputs = ("input",), ()

    def push(self):
        i = self.input["input"]
        while not i.empty():
            p = i.receive()
            packet.free(p)
            packet.free(p)
'''


def write_pcap(path, count: int, size: int = 60) -> None:
    """A capture of ``count`` Ethernet frames of ``size`` bytes at ``path``."""
    from snabbpy.lib import pcap

    frame = bytes(12) + b"\x08\x00" + bytes(size - 14)
    path.write_bytes(pcap.build_file(
        [(pcap.RecordHeader(i, 0, size, size), frame) for i in range(count)]))

def wire(app, inputs: Iterable[str] = (), outputs: Iterable[str] = ()):
    """Gives an app made by hand its links, as the engine would."""
    app.input = {name: Link(name) for name in inputs}
    app.output = {name: Link(name) for name in outputs}
    if hasattr(app, "link"):
        app.link()
    return app


def fill(link: Link, payloads: Iterable[bytes]) -> None:
    """Puts one packet per payload on ``link``."""
    for b in payloads:
        link.transmit(packet.from_bytes(b))


def run(c, breaths: int = 50):
    """Configures an engine with ``c`` and breathes it ``breaths`` times."""
    from snabbpy.core.engine import Engine

    e = Engine()
    e.configure(c)
    for _ in range(breaths):
        e.breathe()
    return e


def drain(link: Link) -> list[bytes]:
    """Takes every packet off ``link`` (freeing it) and returns the payloads."""
    out = []
    while not link.empty():
        p = link.receive()
        out.append(packet.to_bytes(p))
        packet.free(p)
    return out


def need_root(*tools: str) -> None:
    """Fails under CI, skips elsewhere, when one of ``tools`` or root is
    missing."""
    missing = [t for t in tools if shutil.which(t) is None]
    why = f"needs {', '.join(missing)}: run scripts/install-netutils.sh" if missing else (
        "needs root (network namespaces)" if os.geteuid() else "")
    if why:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(why)


def need_tools(*tools: str) -> None:
    """Fails under CI, skips elsewhere, when one of ``tools`` is missing
    (no root needed)."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            f"needs {', '.join(missing)}: run scripts/install-netutils.sh")


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Polls ``predicate`` until true; fails naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def need_vm_lab(*tools: str) -> None:
    """Fails under CI, skips elsewhere, when the VM lab (kernel, busybox,
    qemu-system-x86_64) or one of ``tools`` is missing."""
    from snabbpy.vm.kernel import VMAssetsMissing, find_assets

    try:
        find_assets()
        for tool in ("qemu-system-x86_64", *tools):
            if not shutil.which(tool):
                raise VMAssetsMissing(f"{tool} not installed")
    except VMAssetsMissing as e:
        extra = " and scripts/install-netutils.sh" if tools else ""
        message = f"VM lab not ready ({e}); run scripts/setup-vm-lab.sh{extra}"
        (pytest.fail if os.environ.get("CI") else pytest.skip)(message)


def need_libpcap() -> None:
    """Fails under CI, skips elsewhere, when the system's libpcap (which
    compiles filter expressions) cannot be loaded."""
    from snabbpy.lib import bpf

    try:
        bpf.libpcap()
    except bpf.LibpcapMissing as exc:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(str(exc))


def vhost_app(tmp_path, **conf):
    """A VhostUser app (socket in ``tmp_path``, ``conf`` on top) with links
    on ``input`` and ``output``."""
    from snabbpy.apps.vhost import VhostUser
    from snabbpy.core import config

    conf = {"socket_path": str(tmp_path / "vhost.sock"), **conf}
    return wire(VhostUser(config.validate("vhost", VhostUser, conf)), ["input"], ["output"])


@contextmanager
def vhost_and_frontend(tmp_path, frontend_packed: bool = False, **conf) -> Iterator[tuple]:
    """(VhostUser app, FakeFrontend) joined by a socketpair, not yet set up
    (the frontend asking for packed rings when ``frontend_packed``); on
    exit both are closed and no packet may be left allocated."""
    import socket

    from snabbpy.testing.fake_frontend import FakeFrontend

    before = packet.in_use()
    app = vhost_app(tmp_path, **conf)
    ours, theirs = socket.socketpair()
    app.attach(ours)
    fe = FakeFrontend(theirs, app.tick, packed=frontend_packed)
    yield app, fe
    app.stop()
    fe.close()
    for link in (*app.input.values(), *app.output.values()):
        link.drain()
    assert packet.in_use() == before


def live_counters(app: str) -> dict[str, int]:
    """The counters ``app`` publishes now, in whichever process of this
    counter directory ($SNABBPY_SHM) runs it: main or a worker ({} if none)."""
    from snabbpy.core import registry

    for pid in registry.list_processes(clean=False):
        found = registry.read_process(pid)["apps"].get(app)
        if found is not None:
            return found
    return {}
