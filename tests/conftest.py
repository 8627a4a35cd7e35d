"""Shared fixtures: no packet leaked (where a test asks), no packet
freed twice (after every test: a double free hands one buffer to two
owners and corrupts whatever runs next), and the two ends of a small
interlink ring."""

import pytest

from snabbpy.core import accounting, packet


@pytest.fixture
def no_leaks():
    """Fails the test if packets allocated during it were not freed."""
    before = packet.in_use()
    yield
    assert packet.in_use() == before, "packets leaked"


@pytest.fixture(autouse=True)
def no_double_frees():
    """Fails the test after which a packet sits on the freelist twice, or
    after which C refused a misused packet that no one took up."""
    yield
    assert packet.double_frees() == 0, "a packet was freed twice"
    fault = accounting.take_fault()
    assert fault is None, f"a packet was misused: {fault}"


@pytest.fixture
def shm(tmp_path, monkeypatch):
    """Counters of this test's processes go to a private directory."""
    root = tmp_path / "shm"
    monkeypatch.setenv("SNABBPY_SHM", str(root))
    return root


@pytest.fixture
def ends(tmp_path):
    """The sending and the receiving end of a 64 KiB interlink ring."""
    from snabbpy.core import interlink

    path = tmp_path / "ring"
    interlink.create(path, 1 << 16)
    tx, rx = interlink.Ring(path), interlink.Ring(path)
    yield tx, rx
    tx.close()
    rx.close()
