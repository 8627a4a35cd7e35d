"""Filters: PcapFilter passes the packets a tcpdump expression selects."""

from snabbpy.apps.filter.pcap_filter import PcapFilter

__all__ = ["PcapFilter"]
