"""vguest: a virtio-net guest driver in userspace.

- ``virtq``: the driver side of a split virtqueue (C batch calls);
- ``device``: virtio-net initialisation through a ``transport``;
- ``vhost_user_transport``: the device behind a vhost-user socket;
- ``VGuest``: the app (``vguest.VGuest``).
"""

from snabbpy.apps.vguest.vguest import VGuest

__all__ = ["VGuest", "selftest"]


def selftest(*argv: str) -> int:
    """Sends packets each way through VGuest and a vhost-user backend in
    another process (or the device named by ``--pci`` / ``--vhost-user``);
    returns 0 when every packet is accounted for. See README.md."""
    from snabbpy.apps.vguest.loopback import main

    return main(list(argv))
