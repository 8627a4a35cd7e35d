"""Starting another snabbpy process (a host graph, a selftest's backend).

The child runs the ``snabbpy`` command's entry point (``snabbpy.cli:main``)
with this interpreter, isolated from its current directory (``python -P``):
a checkout there, maybe unbuilt, must not shadow the installed package, as
``python -c``/``-m`` would let it. PYTHONPATH still counts, so a developer
who points it at a checkout runs that checkout everywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import snabbpy

#: The directory snabbpy is imported from (its package's parent).
PACKAGE_ROOT = str(Path(snabbpy.__file__).resolve().parent.parent)

#: What the installed ``snabbpy`` script runs (named as it is, for click's usage lines).
ENTRY_POINT = ("import sys; sys.argv[0] = 'snabbpy'; "
               "from snabbpy.cli import main; sys.exit(main())")


def snabbpy_command(*args: str) -> list[str]:
    """The argv of ``snabbpy ARGS...`` in a new process (see the module docstring)."""
    return [sys.executable, "-P", "-c", ENTRY_POINT, *args]


def spawn_module(module: str, args: list[str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Runs ``python -P -m module args`` as a child process (a worker): the
    same interpreter and the same snabbpy as this process (its directory is
    put first on PYTHONPATH), never the current directory on sys.path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    return subprocess.Popen([sys.executable, "-P", "-m", module, *args], env=env,
                            pass_fds=pass_fds, stdin=subprocess.DEVNULL)
