"""Counters in shared-memory files, readable by another process."""

import pytest

from snabbpy.core import counter
from snabbpy.core.counter import Counters


def test_private_counters_add_and_snapshot():
    c = Counters(("rx", "tx"))
    c.add("rx", 5)
    c["tx"] = 7
    assert c.snapshot() == {"rx": 5, "tx": 7}


def test_file_counters_are_read_by_name_from_the_file(tmp_path):
    c = Counters(("txpackets", "txdrop"), tmp_path / "links" / "a.out->b.in")
    c.add("txpackets", 1000)
    c.pointer[1] += 3  # as C code would
    assert counter.read(tmp_path / "links" / "a.out->b.in") == {"txpackets": 1000, "txdrop": 3}


def test_close_removes_the_file_but_keeps_the_values(tmp_path):
    path = tmp_path / "app"
    c = Counters(("n",), path)
    c.add("n", 2)
    c.close()
    assert not path.exists()
    assert c["n"] == 2


def test_reading_a_foreign_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a snabbpy counter file"):
        counter.read(bad)
