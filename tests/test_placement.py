"""Placement: a graph split by worker, with interlinks where a link joins
two workers, and the refusals of a bad ``workers:`` section."""

from pathlib import Path

import pytest

from snabbpy.core import config
from snabbpy.core.config import ConfigError
from snabbpy.workers import placement
from snabbpy.workers.placement import MAIN

GRAPH = {
    "apps": {
        "src": {"class": "basic.Source"},
        "rss": {"class": "rss.RSS"},
        "a": {"class": "basic.Join", "worker": "w1"},
        "b": {"class": "basic.Join", "worker": "w2"},
        "sink": {"class": "basic.Sink"},
    },
    "links": ["src.output -> rss.input", "rss.out0 -> a.input", "rss.out1 -> b.input",
              "a.output -> sink.in0", "b.output -> sink.in1"],
}


def test_each_worker_gets_its_apps_and_an_interlink_end_per_crossing_link():
    p = placement.place(config.from_dict(GRAPH), Path("/rings"))
    assert sorted(p.parts) == [MAIN, "w1", "w2"] and p.workers == ["w1", "w2"]
    assert set(p.parts["w1"].apps) == {"a", "a-input-rx", "a-output-tx"}
    assert set(p.parts["w1"].links) == {"a-input-rx.output -> a.input",
                                        "a.output -> a-output-tx.input"}
    assert "src.output -> rss.input" in p.parts[MAIN].links
    il = p.interlinks["rss.out0 -> a.input"]
    assert (il.sender, il.receiver) == (MAIN, "w1")
    assert il.path == Path("/rings/rss.out0->a.input@main-w1")
    assert p.parts[MAIN].apps[il.tx_app].conf == {"path": str(il.path)}
    assert p.parts["w1"].apps[il.rx_app].conf == {"path": str(il.path)}


def test_a_ring_is_new_when_an_end_moves_to_another_worker():
    moved = {**GRAPH, "apps": {**GRAPH["apps"], "a": {"class": "basic.Join", "worker": "w2"}}}
    before = placement.place(config.from_dict(GRAPH), Path("/r")).interlinks
    after = placement.place(config.from_dict(moved), Path("/r")).interlinks
    assert before["rss.out0 -> a.input"].path != after["rss.out0 -> a.input"].path
    assert before["rss.out1 -> b.input"] == after["rss.out1 -> b.input"]


def test_interlink_app_names_never_collide_with_the_users():
    doc = {"apps": {"a": {"class": "basic.Source"}, "b": {"class": "basic.Sink", "worker": "w"},
                    "b-input-rx": {"class": "basic.Sink", "worker": "w"}},
           "links": ["a.output -> b.input"]}
    p = placement.place(config.from_dict(doc), Path("/r"))
    assert p.interlinks["a.output -> b.input"].rx_app == "b-input-rx_"


def test_a_worker_gets_the_same_part_from_the_graph_as_data():
    c = config.from_dict({**GRAPH, "workers": {"w1": {"cpu": 0}}})
    doc = placement.to_doc(c)
    assert "config" not in doc["apps"]["src"]  # main's apps stay in main
    for worker in ("w1", "w2"):
        part = placement.part_of(doc, worker, Path("/r"))
        expected = placement.place(c, Path("/r")).parts[worker]
        assert {n: (s.cls, s.conf) for n, s in part.apps.items()} == \
            {n: (s.cls, s.conf) for n, s in expected.apps.items()}
        assert part.links == expected.links


@pytest.mark.parametrize("workers, message", [
    ({"w1": {"cpu": 7}, "w2": {}}, "worker 'w1': cpu 7 is not one this process may use "
                                   "(allowed: 0, 1)"),
    ({"w1": {"cpu": 0}, "w2": {"cpu": 0}}, "workers 'w1' and 'w2' are both on cpu 0"),
    ({"w1": {}}, "app 'b': worker 'w2' is not in 'workers' (declared: w1)"),
])
def test_bad_workers_are_refused_with_one_line(workers, message):
    c = config.from_dict({**GRAPH, "workers": workers})
    with pytest.raises(ConfigError) as err:
        placement.check(c, allowed_cpus={0, 1})
    assert str(err.value) == message


@pytest.mark.parametrize("doc, message", [
    ({"workers": [1]}, "'workers' must be a mapping"),
    ({"workers": {"w1": {"cpu": "x"}}}, "worker 'w1': cpu 'x': expected a CPU number"),
    ({"workers": {"w1": {"cpu": 1, "mem": 2}}}, "worker 'w1': unknown key 'mem'"),
    ({"workers": {"w 1": {}}}, "worker name 'w 1'"),
    ({"apps": {"a": {"class": "basic.Sink", "worker": "x/y"}}}, "app 'a': worker name 'x/y'"),
])
def test_a_malformed_workers_section_is_refused_at_load(doc, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        config.from_dict({"apps": {}, **doc})


def test_the_drawn_graph_says_which_worker_runs_an_app():
    from snabbpy.graph import to_dot

    dot = to_dot(config.from_dict(GRAPH))
    assert '"a" [label="a\\nbasic.Join\\nworker w1"];' in dot
    assert '"src" [label="src\\nbasic.Source"];' in dot
