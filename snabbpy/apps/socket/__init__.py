"""Linux interfaces through AF_PACKET raw sockets."""

from snabbpy.apps.socket.rawsocket import RawSocket

__all__ = ["RawSocket"]


def selftest() -> None:
    """Moves packets between two network namespaces joined by veth (needs
    root and ip from iproute2)."""
    from snabbpy.apps.socket.selftest import run

    run()
