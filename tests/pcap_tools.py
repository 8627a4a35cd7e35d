"""tshark, editcap and tcpdump for the capture tests: run them, and their
stderr without the notice tshark prints when run as root."""

from __future__ import annotations

import subprocess

from helpers import need_tools

_ROOT_NOTICE = 'Running as user "root" and group "root". This could be dangerous.'


def tool(*argv: str) -> tuple[str, str]:
    """Runs a capture tool; its stdout and its warnings (stderr, without
    tshark's root notice). Fails the test when it exits non-zero."""
    need_tools(argv[0])
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    err = "\n".join(line for line in p.stderr.splitlines() if line.strip() != _ROOT_NOTICE)
    assert p.returncode == 0, f"{' '.join(argv)}: exit {p.returncode}: {err}"
    return p.stdout, err


def frames(path) -> list[str]:
    """tshark's time, length, captured length and interface of every frame;
    asserts it read the file without a warning."""
    out, err = tool("tshark", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch",
                    "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.interface_id")
    assert not err, err
    return out.splitlines()
