"""Configurations: building, YAML loading, and every mistake a user makes."""

import textwrap

import pytest

from snabbpy.apps.basic import Sink, Source
from snabbpy.core import config
from snabbpy.core.config import ConfigError, Param


def test_build_a_graph_in_code():
    c = config.new()
    config.app(c, "src", "basic.Source", {"size": 100})
    config.app(c, "sink", Sink)
    config.link(c, "src.output -> sink.input")
    assert c.apps["src"].cls is Source
    assert c.apps["src"].conf == {"size": 100, "fill": 0}
    assert str(c.links["src.output -> sink.input"]) == "src.output -> sink.input"


def test_defaults_fill_missing_keys():
    c = config.new()
    config.app(c, "src", Source)
    assert c.apps["src"].conf["size"] == 60


@pytest.mark.parametrize("spec", ["a.b->c.d", "a.b  ->  c.d", " a.out -> b.in "])
def test_link_specs_tolerate_spacing(spec):
    ls = config.parse_link(spec)
    assert (ls.from_app, ls.to_port) in (("a", "d"), ("a", "in"))


@pytest.mark.parametrize("spec", ["a.b c.d", "a -> b.c", "a.b -> c", "", "a.b.c -> d.e"])
def test_malformed_link_specs_are_rejected(spec):
    with pytest.raises(ConfigError, match="malformed"):
        config.parse_link(spec)


def test_an_output_port_takes_one_link():
    c = config.new()
    config.link(c, "a.out -> b.in")
    with pytest.raises(ConfigError, match="output port a.out is already linked"):
        config.link(c, "a.out -> c.in")


def test_an_input_port_takes_one_link():
    c = config.new()
    config.link(c, "a.out -> c.in")
    with pytest.raises(ConfigError, match="input port c.in is already linked"):
        config.link(c, "b.out -> c.in")


def test_unknown_key_names_the_app_and_the_known_keys():
    with pytest.raises(ConfigError, match=r"app 'src' \(Source\): unknown config key 'sise'"):
        config.app(config.new(), "src", Source, {"sise": 60})


def test_missing_required_key():
    class Needs:
        config = {"path": Param(str)}

    with pytest.raises(ConfigError, match="missing required config key 'path'"):
        config.app(config.new(), "x", Needs, {})


@pytest.mark.parametrize(
    "value, message",
    [("sixty", "expected a number"), (True, "expected a number"), (6.5, "expected an integer")],
)
def test_values_of_the_wrong_type_are_rejected(value, message):
    with pytest.raises(ConfigError, match=f"config key 'size': {message}"):
        config.app(config.new(), "src", Source, {"size": value})


def test_unknown_class_names():
    with pytest.raises(ConfigError, match="no module 'snabbpy.apps.nosuch'"):
        config.app(config.new(), "x", "nosuch.App")
    with pytest.raises(ConfigError, match="has no class 'Nope'"):
        config.app(config.new(), "x", "basic.Nope")
    with pytest.raises(ConfigError, match="expected 'package.Class'"):
        config.app(config.new(), "x", "Source")


def test_link_to_a_missing_app_is_found_by_check():
    c = config.new()
    config.app(c, "src", Source)
    config.link(c, "src.output -> ghost.input")
    with pytest.raises(ConfigError, match="no app named 'ghost'"):
        config.check(c)


def write(tmp_path, text, name="graph.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_load_yaml(tmp_path):
    path = write(tmp_path, """
        apps:
          src: {class: basic.Source, config: {size: 64}}
          sink: {class: basic.Sink}
        links:
          - src.output -> sink.input
    """)
    c = config.load_yaml(path)
    assert c.apps["src"].conf["size"] == 64
    assert list(c.links) == ["src.output -> sink.input"]


def test_yaml_user_app_next_to_the_file(tmp_path):
    (tmp_path / "userapps_for_test.py").write_text(
        "class Mine:\n    config = {}\n    def __init__(self, conf): pass\n"
    )
    path = write(tmp_path, "apps:\n  m: {class: 'userapps_for_test:Mine'}\n")
    assert config.load_yaml(path).apps["m"].cls.__name__ == "Mine"


@pytest.mark.parametrize(
    "text, message",
    [
        ("apps: [\n", "malformed YAML at line"),
        ("- a\n- b\n", "expected a mapping"),
        ("apps: {}\nlnks: []\n", "unknown top-level key 'lnks'"),
        ("apps:\n  a: basic.Source\n", "app 'a': expected a mapping with 'class'"),
        ("apps:\n  a: {class: basic.Source, confg: {}}\n", "app 'a': unknown key 'confg'"),
        ("apps:\n  a: {class: basic.Source}\nlinks: a.output -> b.input\n", "'links' must be"),
        ("apps:\n  a: {class: basic.Source, config: 5}\n", "config must be a mapping"),
    ],
)
def test_yaml_mistakes_name_the_file_and_the_fault(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load_yaml(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_missing_yaml_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read: No such file"):
        config.load_yaml(tmp_path / "absent.yaml")
