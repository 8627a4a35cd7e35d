"""How a worker process is started: the one place that knows the command
line, so it can be swapped for a shared spawning helper."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import snabbpy

#: The directory snabbpy is imported from (its package's parent).
PACKAGE_ROOT = str(Path(snabbpy.__file__).resolve().parent.parent)


def spawn_module(module: str, args: list[str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Runs ``python -P -m module args`` as a child process: the same
    interpreter, the same snabbpy as this process (its directory is put
    first on PYTHONPATH), and never the current directory on sys.path
    (``-P``), so a stray ``snabbpy`` folder there cannot shadow it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    return subprocess.Popen([sys.executable, "-P", "-m", module, *args], env=env,
                            pass_fds=pass_fds, stdin=subprocess.DEVNULL)
