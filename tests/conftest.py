"""Shared fixtures: every test checks that no packet leaked."""

import pytest

from snabbpy.core import packet


@pytest.fixture
def no_leaks():
    """Fails the test if packets allocated during it were not freed."""
    before = packet.in_use()
    yield
    assert packet.in_use() == before, "packets leaked"
