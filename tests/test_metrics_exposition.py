"""The Prometheus text format (snabbpy.metrics.exposition), without a
socket: names, types, label escaping, read back by prometheus_client."""

import pytest
from metrics_helpers import parse, samples

from snabbpy.metrics import exposition as ex
from snabbpy.metrics.exposition import ProcessCounters


def one(**kw) -> ProcessCounters:
    return ProcessCounters(pid=42, name="basic1", **kw)


def test_link_counters_are_one_counter_family_with_labels():
    text = ex.render([one(links={"source.output -> tee.input": {"txpackets": 7, "txdrop": 1}})])
    fam = parse(text)["snabbpy_link_counter"]  # the parser drops _total from the family
    assert fam.type == "counter"
    got = {(s.name, s.labels["counter"]): s.value for s in fam.samples}
    assert got == {("snabbpy_link_counter_total", "txpackets"): 7.0,
                   ("snabbpy_link_counter_total", "txdrop"): 1.0}
    assert fam.samples[0].labels == {"pid": "42", "process": "basic1",
                                     "link": "source.output -> tee.input", "from_app": "source",
                                     "to_app": "tee", "counter": "txpackets"}


def test_help_and_type_lines_come_before_the_samples():
    lines = ex.render([one(apps={"tee": {"packets": 3}})]).splitlines()
    i = lines.index("# TYPE snabbpy_app_counter_total counter")
    assert lines[i - 1].startswith("# HELP snabbpy_app_counter_total ")
    assert lines[i + 1] == ('snabbpy_app_counter_total{pid="42",process="basic1",app="tee",'
                            'counter="packets"} 3')


def test_app_engine_and_start_time_families():
    text = ex.render([one(apps={"rx": {"rxerrors": 2}}, engine={"breaths": 10},
                          engine_gauges={"nfree": 5}, started=1700000000.5)])
    fams = parse(text)
    assert fams["snabbpy_app_counter"].samples[0].labels["app"] == "rx"
    assert fams["snabbpy_engine_counter"].samples[0].labels["counter"] == "breaths"
    assert fams["snabbpy_engine_counter"].samples[0].value == 10
    assert fams["snabbpy_engine_gauge"].type == "gauge"
    assert fams["snabbpy_engine_gauge"].samples[0].labels == {"pid": "42", "process": "basic1",
                                                              "counter": "nfree"}
    assert fams["snabbpy_process_start_time_seconds"].type == "gauge"
    assert fams["snabbpy_process_start_time_seconds"].samples[0].value == 1700000000.5
    assert fams["snabbpy_processes"].samples[0].value == 1


def test_families_without_samples_are_left_out():
    text = ex.render([one()])
    assert set(parse(text)) == {"snabbpy_processes"}
    assert ex.render([]) == ("# HELP snabbpy_processes Running snabbpy processes seen by this "
                             "scrape.\n# TYPE snabbpy_processes gauge\nsnabbpy_processes 0\n")


@pytest.mark.parametrize("value", ['a"b', "back\\slash", "line\nfeed", 'all\\"\n', "ünï"])
def test_label_values_are_escaped_and_read_back_exactly(value):
    text = ex.render([ProcessCounters(pid=1, name=value, apps={value: {"c": 1}})])
    (s,) = samples(text, "snabbpy_app_counter")
    assert s.labels["process"] == value and s.labels["app"] == value


def test_escaping_rules():
    assert ex.escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert ex.escape_help("x\\y\nz\"") == 'x\\\\y\\nz"'  # HELP keeps double quotes


def test_uint64_counters_are_written_exactly():
    text = ex.render([one(links={"a.o -> b.i": {"txbytes": 2**64 - 1}})])
    assert f"}} {2**64 - 1}\n" in text


def test_special_float_values():
    assert [ex.format_value(v) for v in (float("nan"), float("inf"), -float("inf"), 0.5, 3)] == \
        ["NaN", "+Inf", "-Inf", "0.5", "3"]


@pytest.mark.parametrize("name", ["9lives", "a-b", "", "a b", "é"])
def test_bad_metric_names_are_refused(name):
    with pytest.raises(ValueError, match="not a Prometheus metric name"):
        ex.check_name(name)


@pytest.mark.parametrize("label", ["__reserved", "a-b", "1x", ""])
def test_bad_label_names_are_refused(label):
    with pytest.raises(ValueError, match="not a Prometheus label name"):
        ex.format_labels({label: "v"})


def test_processes_come_in_pid_order_and_links_sorted():
    text = ex.render([ProcessCounters(pid=9, name="b", links={"z.o -> y.i": {"txpackets": 1}}),
                      ProcessCounters(pid=3, name="a", links={"b.o -> c.i": {"txpackets": 1},
                                                             "a.o -> c.i": {"txpackets": 1}})])
    got = [(s.labels["pid"], s.labels["link"]) for s in samples(text, "snabbpy_link_counter")]
    assert got == [("3", "a.o -> c.i"), ("3", "b.o -> c.i"), ("9", "z.o -> y.i")]


def test_link_ends_of_odd_specs():
    assert ex.link_ends("a.out -> b.in") == ("a", "b")
    assert ex.link_ends("no arrow") == ("", "")
