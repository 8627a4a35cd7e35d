"""Starting another snabbpy process (a host graph, a selftest's backend).

The child runs the ``snabbpy`` command's entry point (``snabbpy.cli:main``)
with this interpreter, isolated from its current directory (``python -P``):
a checkout there, maybe unbuilt, must not shadow the installed package, as
``python -c``/``-m`` would let it. PYTHONPATH still counts, so a developer
who points it at a checkout runs that checkout everywhere.
"""

from __future__ import annotations

import sys

#: What the installed ``snabbpy`` script runs (named as it is, for click's usage lines).
ENTRY_POINT = ("import sys; sys.argv[0] = 'snabbpy'; "
               "from snabbpy.cli import main; sys.exit(main())")


def snabbpy_command(*args: str) -> list[str]:
    """The argv of ``snabbpy ARGS...`` in a new process (see the module docstring)."""
    return [sys.executable, "-P", "-c", ENTRY_POINT, *args]
