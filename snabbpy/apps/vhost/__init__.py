"""vhost: the host (device) side of a virtio-net port over vhost-user."""

from snabbpy.apps.vhost.vhost_queue import VhostQueue
from snabbpy.apps.vhost.vhost_user import VhostUser

__all__ = ["VhostQueue", "VhostUser"]


def selftest() -> None:
    """VhostUser against a scripted frontend over a socketpair."""
    from snabbpy.apps.vhost.selftest import run

    run()
