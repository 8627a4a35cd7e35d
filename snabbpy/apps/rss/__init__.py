"""RSS: spreads flows over N outputs by a symmetric flow hash; Flows makes
traffic of many flows to feed it."""

from snabbpy.apps.rss.flows import Flows
from snabbpy.apps.rss.rss import RSS, flow_hash, output_index, port_order

__all__ = ["RSS", "Flows", "flow_hash", "output_index", "port_order"]

#: This package's C parts for snabbpy._native: (header, source), either may be
#: None, relative to this directory, in the order C must see them.
#: native_build.py reads this list without importing the package.
C_PARTS = [("rss.h", "rss.c")]


def selftest() -> None:
    """Both directions of 1024 flows over 2, 3 and 4 outputs."""
    from snabbpy.apps.rss.selftest import run

    run()
