"""The process registry: where each process publishes its counters (what
`snabbpy ps` and `top` read: tests/test_top.py runs them)."""

from snabbpy.core import registry


def test_process_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SNABBPY_SHM", str(tmp_path))
    assert registry.process_dir(1234) == tmp_path / "1234"


def test_safe_name_of_a_link_spec():
    assert registry.safe_name("a.out -> b.in") == "a.out->b.in"
