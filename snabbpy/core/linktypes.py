"""Link types on links: what a parsing app gets must be what it parses.

An app that parses frames of a link layer declares the pcap link types it
parses in ``link_types`` (a class or instance attribute: ``(1,)`` is
Ethernet). An app whose output's link type is known once it has started
answers ``link_type()`` (a PcapReader of a classic capture: its file's; None
when it cannot say, as for pcapng, whose interfaces come as it reads).
``check`` refuses, when the graph is configured, a link from one to the
other whose types cannot match, in one line naming both apps.
"""

from __future__ import annotations

from typing import Any

from snabbpy.core.config import ConfigError

ETHERNET = (1,)

#: The names of common pcap link types, for the error line.
NAMES = {0: "NULL (BSD loopback)", 1: "Ethernet", 101: "RAW (IP)", 105: "IEEE 802.11",
         113: "LINUX_SLL (Linux cooked)", 127: "IEEE 802.11 radiotap", 228: "IPv4",
         229: "IPv6", 276: "LINUX_SLL2 (Linux cooked v2)"}


#: libpcap's DLT values that differ from the pcap file's LINKTYPE values.
_DLT_TO_LINKTYPE = {12: 101, 14: 101}  # DLT_RAW (Linux, OpenBSD) is LINKTYPE_RAW


def from_dlt(dlt: int) -> int:
    """The pcap file link type of a libpcap DLT value."""
    return _DLT_TO_LINKTYPE.get(dlt, dlt)


def name(linktype: int) -> str:
    """``Ethernet``, ``RAW (IP)``...: the link type's name and number."""
    return f"{NAMES[linktype]} (link type {linktype})" if linktype in NAMES \
        else f"link type {linktype}"


def check(apps: dict[str, Any], links: dict[str, Any]) -> None:
    """Raises ConfigError for the first link (spec -> LinkSpec) that brings
    an app frames of a link type it does not parse."""
    for ls in links.values():
        parses = getattr(apps.get(ls.to_app), "link_types", None)
        says = getattr(apps.get(ls.from_app), "link_type", None)
        sent = says() if parses is not None and callable(says) else None
        if sent is None or sent in parses:
            continue
        cls = type(apps[ls.to_app]).__name__
        raise ConfigError(
            f"app {ls.to_app!r} ({cls}) parses {' or '.join(name(t) for t in parses)} "
            f"frames, but app {ls.from_app!r} sends {name(sent)} on {ls.from_port!r}")
