"""`snabbpy run --metrics` of a graph over workers: one scrape has the
counters of every process of the graph, each labelled with its worker,
and an interlink under the link the user wrote, seen from both sides."""

import os
import subprocess

from helpers import SNABBPY, wait_for
from metrics_helpers import samples

from snabbpy.metrics import collect, exposition
from snabbpy.workers import published
from snabbpy.workers.placement import Placement, place
from tests.test_metrics_exporter import _scrape, _stop

GRAPH = """\
apps:
  src:  {class: basic.Source, config: {size: 64}}
  fwd:  {class: basic.Join, worker: w1}
  sink: {class: basic.Sink}
links:
  - src.output -> fwd.input
  - fwd.output -> sink.input
"""

LINKS = {"src.output -> fwd.input", "fwd.output -> sink.input"}


def _sent(text: str) -> dict[tuple[str, str, str], float]:
    """txpackets by (worker, link, interlink side)."""
    return {(s.labels.get("worker"), s.labels["link"], s.labels.get("interlink")): s.value
            for s in samples(text, "snabbpy_link_counter")
            if s.labels["counter"] == "txpackets"}


def test_a_scrape_of_a_graph_over_workers_labels_every_process(shm, tmp_path):
    (tmp_path / "g.yaml").write_text(GRAPH)
    env = {**os.environ, "SNABBPY_SHM": str(shm)}
    run = subprocess.Popen([*SNABBPY, "run", "g.yaml", "--duration", "120",
                            "--report-interval", "0", "--metrics", "127.0.0.1:0"],
                           env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    try:
        line = run.stderr.readline()
        assert "serving http://" in line, line + run.stderr.read()
        url = line.split("serving ", 1)[1].strip()
        want = {("main", "src.output -> fwd.input", "out"), ("w1", "src.output -> fwd.input", "in"),
                ("w1", "fwd.output -> sink.input", "out"),
                ("main", "fwd.output -> sink.input", "in")}
        wait_for(lambda: set(_sent(_scrape(url))) == want, "both processes' links")
        first = _sent(_scrape(url))
        wait_for(lambda: all(v > first[k] for k, v in _sent(_scrape(url)).items()),
                 "every link of both processes to move")
        text = _scrape(url)
        assert samples(text, "snabbpy_processes")[0].value == 2
        links = samples(text, "snabbpy_link_counter")
        assert {s.labels["from_app"] for s in links} == {"src", "fwd"}  # no interlink app
        assert {s.labels["to_app"] for s in links} == {"fwd", "sink"}
        assert {s.labels["process"] for s in links} == {"g"}
        workers = {s.labels["worker"] for s in samples(text, "snabbpy_engine_counter")
                   if s.labels["counter"] == "breaths"}
        assert workers == {"main", "w1"}
    finally:
        _stop(run)
    assert run.returncode == 0


def test_a_process_outside_any_graph_over_workers_has_no_worker_label():
    one = exposition.ProcessCounters(pid=1, name="basic1",
                                     links={"a.output -> b.input": {"txpackets": 1}})
    (sample,) = samples(exposition.render([one]), "snabbpy_link_counter")
    assert "worker" not in sample.labels and "interlink" not in sample.labels


def test_interlink_links_are_renamed_only_on_their_own_side(tmp_path):
    from snabbpy.core import config

    c = config.from_dict({"apps": {"a": {"class": "basic.Source"},
                                   "b": {"class": "basic.Sink", "worker": "w1"}},
                          "links": ["a.output -> b.input"]})
    p: Placement = place(c, tmp_path)
    graph = {"interlinks": [{"link": "a.output -> b.input", "from": "main", "to": "w1",
                             "tx_link": next(iter(p.parts["main"].links)),
                             "rx_link": next(iter(p.parts["w1"].links))}]}
    main = exposition.ProcessCounters(pid=1, name="g", links={
        k: {"txpackets": 5} for k in p.parts["main"].links})
    collect.in_graph(main, "main", graph)
    assert main.links == {"a.output -> b.input": {"txpackets": 5}}
    assert main.interlinks == {"a.output -> b.input": "out"}
    assert published.link_names(graph, "w1") == {
        next(iter(p.parts["w1"].links)): "a.output -> b.input (interlink from main)"}
    garbled = {"interlinks": ["x", {"from": "main", "tx_link": 7}]}
    assert published.interlink_ends(garbled, "main") == {}
