"""Linux interfaces through AF_PACKET raw sockets."""

from snabbpy.apps.socket.rawsocket import RawSocket

__all__ = ["RawSocket"]

#: This package's C parts for snabbpy._native: (header, source), either may be
#: None, relative to this directory, in the order C must see them.
#: native_build.py reads this list without importing the package.
C_PARTS = [("fdio.h", "fdio.c")]


def selftest() -> None:
    """Moves packets between two network namespaces joined by veth (needs
    root and ip from iproute2)."""
    from snabbpy.apps.socket.selftest import run

    run()
