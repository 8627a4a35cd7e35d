"""The basic apps: generate, sink, join, split, copy, repeat, cut, sample."""

from snabbpy.apps.basic.join import Join
from snabbpy.apps.basic.repeater import Repeater
from snabbpy.apps.basic.sample import Sample
from snabbpy.apps.basic.sink import Sink
from snabbpy.apps.basic.source import Source
from snabbpy.apps.basic.split import Split
from snabbpy.apps.basic.tee import Tee
from snabbpy.apps.basic.truncate import Truncate

__all__ = ["Join", "Repeater", "Sample", "Sink", "Source", "Split", "Tee", "Truncate"]

#: This package's C parts for snabbpy._native: (header, source), either may be
#: None, relative to this directory, in the order C must see them.
#: native_build.py reads this list without importing the package.
C_PARTS = [("basic.h", "basic.c")]


def selftest() -> None:
    """Runs Source -> Tee -> two Sinks for a while and checks the counters."""
    from snabbpy.apps.basic.basic1 import run

    run()
