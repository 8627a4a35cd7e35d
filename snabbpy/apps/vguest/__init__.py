"""vguest: a virtio-net guest driver in userspace.

- ``virtq``: the driver side of a split virtqueue (C batch calls);
- ``device``: virtio-net initialisation through a ``transport``;
- ``vhost_user_transport``: the device behind a vhost-user socket;
- ``VGuest``: the app (``vguest.VGuest``).
"""

# The package's selftest() is bound here, before anything imports the
# selftest package's modules (which would rebind the name to the package).
from snabbpy.apps.vguest.selftest import selftest
from snabbpy.apps.vguest.vguest import VGuest

__all__ = ["VGuest", "selftest"]
