"""vguest: a virtio-net guest driver in userspace.

- ``device``: virtio-net initialisation through a ``transport``, on the
  driver end of the rings (``snabbpy.lib.virtio.virtq``);
- ``vhost_user_transport``: the device behind a vhost-user socket;
  ``pci_transport`` (``pci_legacy``, ``pci_modern``): a virtio-net PCI device;
- ``VGuest``: the app (``vguest.VGuest``);
- ``selftest``: what ``snabbpy selftest apps.vguest`` runs.
"""

# The package's selftest() is bound here, before anything imports the
# selftest package's modules (which would rebind the name to the package).
from snabbpy.apps.vguest.selftest import selftest
from snabbpy.apps.vguest.vguest import VGuest

__all__ = ["VGuest", "selftest"]
