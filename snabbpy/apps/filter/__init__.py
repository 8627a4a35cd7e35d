"""Filters: PcapFilter passes the packets a tcpdump expression selects."""

from snabbpy.apps.filter.pcap_filter import PcapFilter

__all__ = ["PcapFilter"]


def selftest() -> None:
    """Runs PcapFilter over known frames, compiled and interpreted."""
    from snabbpy.apps.filter.selftest import run

    run()
