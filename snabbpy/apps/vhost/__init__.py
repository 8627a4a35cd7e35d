"""vhost: the host (device) side of a virtio-net port over vhost-user."""

from snabbpy.apps.vhost.vhost_user import VhostUser

__all__ = ["VhostUser"]
