"""`snabbpy graph`: dot text, PNG and SVG images through Graphviz, and link
labels with the packet counts of a running process."""

import os
import shutil

import pytest
from click.testing import CliRunner

from snabbpy import graph
from snabbpy.cli import main
from snabbpy.core import config
from snabbpy.core.engine import Engine

GRAPH = """
apps:
  src: {class: basic.Source, config: {size: 60}}
  sink: {class: basic.Sink}
links:
  - src.output -> sink.input
"""


def need_dot() -> None:
    if shutil.which("dot") is None:
        why = "needs Graphviz dot: run scripts/install-netutils.sh"
        (pytest.fail if os.environ.get("CI") else pytest.skip)(why)


@pytest.fixture
def yaml_file(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(GRAPH)
    return path


def test_dot_names_apps_classes_and_ports(yaml_file):
    r = CliRunner().invoke(main, ["graph", str(yaml_file)])
    assert r.exit_code == 0
    assert '"src" [label="src\\nbasic.Source"];' in r.output
    assert '"src" -> "sink" [label="output -> input"];' in r.output


@pytest.mark.parametrize("fmt,magic", [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_images_are_rendered_by_graphviz(yaml_file, tmp_path, fmt, magic):
    need_dot()
    out = tmp_path / f"g.{fmt}"
    r = CliRunner().invoke(main, ["graph", str(yaml_file), "--format", fmt, "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes().startswith(magic)


def test_svg_shows_the_app_names(yaml_file):
    need_dot()
    r = CliRunner().invoke(main, ["graph", str(yaml_file), "--format", "svg"])
    assert "basic.Source" in r.output and "sink" in r.output


def test_missing_graphviz_names_the_install_script():
    with pytest.raises(graph.RenderError, match="scripts/install-netutils.sh"):
        graph.render("digraph {}", "png", dot_command="no-such-dot-here")


def test_links_show_packet_counts_of_a_running_process(yaml_file, tmp_path, monkeypatch):
    monkeypatch.setenv("SNABBPY_SHM", str(tmp_path / "shm"))
    e = Engine(publish=True)
    e.configure(config.load_yaml(yaml_file))
    e.breathe()
    try:
        r = CliRunner().invoke(main, ["graph", str(yaml_file), "--pid", str(os.getpid())])
    finally:
        e.stop()
    assert r.exit_code == 0, r.output
    assert 'label="output -> input\\n1,023 packets"' in r.output


def test_pid_of_no_running_process_is_an_error(yaml_file, tmp_path, monkeypatch):
    monkeypatch.setenv("SNABBPY_SHM", str(tmp_path / "shm"))
    r = CliRunner().invoke(main, ["graph", str(yaml_file), "--pid", "999999999"])
    assert r.exit_code == 1 and "not a running snabbpy process" in r.output
