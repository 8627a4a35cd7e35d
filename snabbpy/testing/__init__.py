"""The test kit: virtio peers with no VM, for snabbpy's tests and yours.

- ``fake_guest``: guest memory and a hand-driven split virtqueue (the
  driver side) over it, to exercise a device-side ring;
- ``fake_frontend``: a scripted vhost-user frontend for VhostUser;
- ``vguest_model``: an in-process virtio-net device for the vguest driver;
- ``frames``: numbered frames, and the source and sink apps that send and
  check them (what vguest's selftest and the VM lab exchange).

Above apps in the layers (docs/architecture.md): apps do not import it,
but a package's selftest may.
"""
