"""Linux TAP devices as ports of a graph."""

from snabbpy.apps.tap.tap import Tap

__all__ = ["Tap"]


def selftest(name: str = "sbtap-selftest") -> None:
    """Opens TAP device ``name`` (creating it when missing), checks it is
    up, and closes it again (needs root; run it in a namespace of its own:
    ``ip netns add t && ip netns exec t snabbpy selftest apps.tap``)."""
    from snabbpy.apps.tap import device
    from snabbpy.core import config
    from snabbpy.core.engine import Engine

    c = config.new()
    config.app(c, "tap", Tap, {"name": name})
    e = Engine()
    e.configure(c)
    created = e.apps["tap"].created
    assert device.exists(name), f"{name} does not exist"
    e.stop()
    assert device.exists(name) != created, f"{name}: created {created}, exists after stop"
    print(f"tap selftest: ok ({name} {'created and removed' if created else 'attached'})")
