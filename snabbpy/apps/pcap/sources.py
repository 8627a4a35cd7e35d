"""Where a packet was captured: the process-wide table of capture sources.

Each PcapReader registers its file here and gets a source id (1..1023);
each packet it sends carries ``source * 64 + interface`` in its annotation
(see pcap.c). A PcapWriter looks the key up to learn the packet's link
type, interface description and, for classic pcap, the global header to
reproduce. Key 0: a packet with no (valid) annotation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snabbpy.core.config import ConfigError
from snabbpy.lib import pcap, pcapng

MAX_SOURCES = 1024
MAX_IFACES = 64


@dataclass
class Source:
    """A reader's file: its classic header (None for pcapng) and its
    interfaces, numbered across sections (classic: one)."""

    path: str
    header: pcap.FileHeader | None = None
    interfaces: list[pcapng.Interface] = field(default_factory=list)


_sources: dict[int, Source] = {}
_next = [1]


def register(source: Source) -> int:
    """A new source id for ``source``."""
    for _ in range(MAX_SOURCES):
        sid = _next[0]
        _next[0] = sid % (MAX_SOURCES - 1) + 1
        if sid not in _sources:
            _sources[sid] = source
            return sid
    raise ConfigError(f"more than {MAX_SOURCES - 1} PcapReaders in one process")


def release(sid: int) -> None:
    """Forgets a stopped reader's source (its packets then look unannotated
    to writers started after the id is reused)."""
    _sources.pop(sid, None)


def lookup(key: int) -> tuple[Source, pcapng.Interface] | None:
    """The source and interface of an annotation key, or None."""
    s = _sources.get(key // MAX_IFACES)
    if s is None or key % MAX_IFACES >= len(s.interfaces):
        return None
    return s, s.interfaces[key % MAX_IFACES]


def classic_interface(h: pcap.FileHeader) -> pcapng.Interface:
    """The one interface of a classic capture; the link type is the whole
    field (FCS bits included), the units its magic's."""
    return pcapng.Interface(h.linktype, h.snaplen, 10**9 if h.nanosecond else 10**6)
