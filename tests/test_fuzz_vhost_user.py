"""Coverage-guided fuzzing of the vhost-user decoder and the VhostUser
device's handlers with raw bytes and real fds: tests/fuzz/fuzz_vhost_user.py
(atheris)."""

from __future__ import annotations

from fuzz_helpers import fuzz


def test_fuzz_vhost_user():
    fuzz("vhost_user")
