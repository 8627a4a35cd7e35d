"""``snabbpy selftest apps.vguest``: numbered frames each way through VGuest.

- ``loopback``: against a device that loops packets back: a vhost-user
  backend started in another process (the default), or the backend named
  by ``--vhost-user``;
- ``pci``: inside a VM, on the PCI device named by ``--pci`` (or
  SNABBPY_VGUEST_PCI), against what the host sends and counts;
- ``graph``: the graph both run, and how both judge it.

The frames, and the apps that send and check them, are the test kit's
(``snabbpy.testing.frames``), shared with the VM lab's host side.
"""

from __future__ import annotations

import os


def selftest(*argv: str) -> int:
    """Sends packets each way through VGuest and a vhost-user backend in
    another process (or the device named by ``--pci`` / ``--vhost-user``);
    returns 0 when every packet is accounted for. See README.md."""
    if os.environ.get("SNABBPY_VGUEST_PCI") or any(a.split("=")[0] == "--pci" for a in argv):
        from snabbpy.apps.vguest.selftest import pci  # the host sends, we count

        return pci.main(list(argv))
    from snabbpy.apps.vguest.selftest import loopback

    return loopback.main(list(argv))
