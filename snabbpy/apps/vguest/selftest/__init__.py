"""``snabbpy selftest apps.vguest``: the loopback and the PCI selftest."""


def selftest(*argv: str) -> int:
    """Sends packets each way through VGuest and a vhost-user backend in
    another process (or the device named by ``--pci`` / ``--vhost-user``);
    returns 0 when every packet is accounted for. See README.md."""
    from snabbpy.apps.vguest.selftest.loopback import main

    return main(list(argv))
