"""App port names of the queue pairs of a multiqueue virtio-net port.

VhostUser (device) and VGuest (driver) name them alike: queue pair 0 is
``input``/``output`` (what a one-queue port always had), pair k > 0 is
``input<k>``/``output<k>``. ``INPUTS``/``OUTPUTS`` are every name an app
with ``MAX_QUEUE_PAIRS`` pairs may have; ``check_ports`` refuses a linked
port of a pair the app was not configured with.
"""

from __future__ import annotations

from collections.abc import Iterable

from snabbpy.core.config import ConfigError

from .net_ctrl import MAX_QUEUE_PAIRS


def port_names(pair: int) -> tuple[str, str]:
    """(input port, output port) of queue pair ``pair``."""
    return ("input", "output") if pair == 0 else (f"input{pair}", f"output{pair}")


INPUTS = tuple(port_names(k)[0] for k in range(MAX_QUEUE_PAIRS))
OUTPUTS = tuple(port_names(k)[1] for k in range(MAX_QUEUE_PAIRS))


def pair_of_port(port: str) -> int:
    """The queue pair a port name belongs to (ValueError if none)."""
    return INPUTS.index(port) if port in INPUTS else OUTPUTS.index(port)


def check_ports(ports: Iterable[str], pairs: Iterable[int]) -> None:
    """ConfigError for a port in ``ports`` whose pair is not in ``pairs``."""
    allowed = set(pairs)
    for port in ports:
        pair = pair_of_port(port)
        if pair not in allowed:
            have = ", ".join(map(str, sorted(allowed))) or "none"
            raise ConfigError(f"port {port!r} is queue pair {pair}, but this app serves "
                              f"pairs {have} (see queues)")
