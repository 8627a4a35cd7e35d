"""`snabbpy exporter` and `snabbpy run --metrics`: what a scrape sees of
running processes (stale and vanishing ones left out), --listen errors,
and a real graph scraped over loopback and read by prometheus_client."""

import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner
from helpers import SNABBPY, wait_for
from metrics_helpers import samples

from snabbpy.cli import main
from snabbpy.core import counter, registry
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine
from snabbpy.metrics import collect, server
from snabbpy.metrics.server import parse_listen


@pytest.mark.parametrize("text, want", [("127.0.0.1:9100", ("127.0.0.1", 9100)),
                                        ("localhost:0", ("localhost", 0)),
                                        ("[::1]:9100", ("::1", 9100))])
def test_listen_addresses(text, want):
    assert parse_listen(text) == want


@pytest.mark.parametrize("text, why", [("9100", "expected HOST:PORT"), (":9100", "HOST:PORT"),
                                       ("127.0.0.1:65536", "not a number from 0 to 65535"),
                                       ("127.0.0.1:http", "not a number"),
                                       ("127.0.0.1:-1", "not a number"),
                                       ("::1:9100", "in brackets"),
                                       ("[zz]:9100", "not an IPv6 address")])
def test_bad_listen_addresses(text, why):
    with pytest.raises(ConfigError, match=why):
        parse_listen(text)


def test_a_port_in_use_is_one_line_and_exit_2():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        for args in (["exporter", "--listen", f"127.0.0.1:{port}"],
                     ["run", "configs/basic1.yaml", "--metrics", f"127.0.0.1:{port}"]):
            r = CliRunner().invoke(main, args)
            assert r.exit_code == 2, r.output
            assert r.output == f"snabbpy: error: {args[-2]} 127.0.0.1:{port}: " \
                               "address already in use\n"


def test_a_bad_port_is_one_line_and_exit_2():
    r = CliRunner().invoke(main, ["exporter", "--listen", "127.0.0.1:70000"])
    assert r.exit_code == 2 and len(r.output.splitlines()) == 1, r.output
    r = CliRunner().invoke(main, ["run", "configs/basic1.yaml", "--metrics", "nowhere"])
    assert r.output == "snabbpy: error: --metrics 'nowhere': expected HOST:PORT, " \
                       "e.g. 127.0.0.1:9100\n"


def test_a_scrape_sees_a_publishing_engine_and_not_stale_directories(shm, basic1):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (shm / str(dead.pid) / "links").mkdir(parents=True)
    counter.Counters(["txpackets"], shm / str(dead.pid) / "links" / "x.o->y.i")
    e = Engine(publish=True)
    e.configure(basic1)
    e.breathe()
    try:
        (p,) = collect.read_all()
        assert p.pid == os.getpid() and p.links == e.counters()["links"]
        assert (shm / str(dead.pid)).exists()  # ignored, and a scrape writes nothing
        text = server.scrape()
        assert str(dead.pid) not in text
        links = {s.labels["link"] for s in samples(text, "snabbpy_link_counter")}
        assert links == set(e.links)
    finally:
        e.stop()


def test_garbled_counter_files_are_skipped(shm, basic1):
    e = Engine(publish=True)
    e.configure(basic1)
    mine = shm / str(os.getpid())
    try:
        (mine / "links" / "short").write_bytes(b"SNBPY")
        (mine / "links" / "huge-count").write_bytes(b"SNBPYCNT" + b"\xff" * 8)
        (mine / "apps" / "bad-name").write_bytes(
            counter._HEADER.pack(counter.MAGIC, 1, 0) + b"\xff" * 32 + bytes(8))
        (mine / "engine").write_bytes(b"not counters")
        (p,) = collect.read_all()
        assert set(p.links) == set(e.links) and p.engine == {}
        assert "snabbpy_link_counter_total" in server.scrape()
    finally:
        e.stop()


def test_only_metrics_is_served(shm):
    httpd = server.bind("127.0.0.1:0", render=lambda: "x 1\n")
    server.serve_in_thread(httpd)
    try:
        base = server.url(httpd).removesuffix("/metrics")
        with urllib.request.urlopen(base + "/metrics?x=1", timeout=30) as reply:
            assert reply.read() == b"x 1\n"
        with urllib.request.urlopen(base + "/", timeout=30) as reply:
            assert b'href="/metrics"' in reply.read()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(base + "/other", timeout=30)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_process_that_exits_mid_scrape_is_left_out(shm, basic1, monkeypatch):
    e = Engine(publish=True)
    e.configure(basic1)
    try:
        assert collect.read_one(os.getpid()) is not None
        monkeypatch.setattr(registry, "is_running", lambda pid: False)  # gone while read
        assert collect.read_one(os.getpid()) is None
    finally:
        e.stop()


def test_the_engine_publishes_breaths_naps_and_packet_counts(shm, basic1):
    from snabbpy.core import packet
    from snabbpy.core.engine_stats import SYNC_BREATHS

    e = Engine(publish=True)
    e.configure(basic1)
    try:
        e.main(done=lambda: e.breaths >= SYNC_BREATHS + 3)
        mid = collect.read_one(os.getpid())
        e.main(done=lambda: e.breaths >= 2 * SYNC_BREATHS + 5, sleep=lambda s: None)
        p = collect.read_one(os.getpid())
    finally:
        e.stop()
    assert mid.engine["breaths"] == SYNC_BREATHS + 3  # copied when main() returns
    assert p.engine["breaths"] == e.breaths == 2 * SYNC_BREATHS + 5
    assert p.engine["naps"] == e.naps and p.engine["nap_us"] == e.nap_us
    assert p.engine["freed"] > mid.engine["freed"] > 0
    assert set(p.engine_gauges) == {"nfree"} and "nfree" not in p.engine
    assert p.engine["allocated"] <= packet.stats()["allocated"]
    assert not (shm / str(os.getpid())).exists()  # stop() removed the engine file too


def test_an_idle_engine_counts_its_naps(shm):
    from snabbpy.core import config

    c = config.new()
    config.app(c, "sink", "basic.Sink")
    e = Engine(publish=True)
    e.configure(c)
    naps = []
    try:
        e.main(done=lambda: e.breaths >= 10, sleep=naps.append)
        p = collect.read_one(os.getpid())
    finally:
        e.stop()
    assert p.engine["naps"] == len(naps) == 9  # no nap after the last breath
    assert p.engine["nap_us"] == sum(range(1, 10)) == round(sum(naps) * 1e6)


def test_process_names_come_from_the_config_file(shm):
    assert collect.process_name(1, {"config": "/x/configs/basic1.yaml"}) == "basic1"
    assert collect.process_name(os.getpid(), None) == \
        open(f"/proc/{os.getpid()}/comm").read().strip()
    assert collect.process_name(os.getpid(), {"config": 7}) != "7"  # garbled info: comm


@pytest.fixture
def basic1():
    from snabbpy.apps.basic.basic1 import basic1 as graph

    return graph(60)


def _start(args: list[str], env: dict) -> tuple[subprocess.Popen, str]:
    """Starts a snabbpy command that prints 'serving URL' on stderr; returns
    it and the URL."""
    proc = subprocess.Popen([*SNABBPY, *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    assert "serving http://" in line, line + proc.stderr.read()
    return proc, line.split("serving ", 1)[1].strip()


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as reply:
        assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return reply.read().decode()


def _link_packets(text: str, pid: int) -> dict[str, float]:
    return {s.labels["link"]: s.value for s in samples(text, "snabbpy_link_counter")
            if s.labels["pid"] == str(pid) and s.labels["counter"] == "txpackets"}


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)


@pytest.mark.parametrize("via", ["exporter", "run --metrics"])
def test_a_running_graph_scraped_over_loopback(shm, via):
    env = {**os.environ, "SNABBPY_SHM": str(shm)}
    run_args = ["run", "configs/basic1.yaml", "--duration", "120", "--report-interval", "0"]
    if via == "exporter":
        exporter, url = _start(["exporter", "--listen", "127.0.0.1:0"], env)
        run = subprocess.Popen([*SNABBPY, *run_args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    else:
        exporter = None
        run, url = _start([*run_args, "--metrics", "127.0.0.1:0"], env)
    try:
        specs = {"source.output -> tee.input", "tee.out1 -> sink.in1", "tee.out2 -> sink.in2"}
        wait_for(lambda: set(_link_packets(_scrape(url), run.pid)) == specs, "the graph's links")
        first = _link_packets(_scrape(url), run.pid)
        wait_for(lambda: all(_link_packets(_scrape(url), run.pid)[s] > first[s] for s in specs),
                 "link counters to increase")
        text = _scrape(url)
        (link,) = [s for s in samples(text, "snabbpy_link_counter")
                   if s.labels["link"] == "tee.out1 -> sink.in1"
                   and s.labels["counter"] == "txdrop"]
        assert link.labels == {"pid": str(run.pid), "process": "basic1",
                               "link": "tee.out1 -> sink.in1", "from_app": "tee",
                               "to_app": "sink", "counter": "txdrop"}
        assert samples(text, "snabbpy_processes")[0].value == 1
        def engine() -> dict:  # copied every SYNC_BREATHS breaths: wait for the first copy
            return {s.labels["counter"]: s.value
                    for s in samples(_scrape(url), "snabbpy_engine_counter")}
        wait_for(lambda: engine().get("breaths", 0) > 0, "the engine's breaths")
        assert engine()["freed"] > 0
        (started,) = samples(text, "snabbpy_process_start_time_seconds")
        assert started.labels == {"pid": str(run.pid), "process": "basic1"}
    finally:
        _stop(run)
    assert run.returncode == 0
    if exporter is not None:
        try:  # the graph has gone: the exporter says so and keeps serving
            wait_for(lambda: samples(_scrape(url), "snabbpy_processes")[0].value == 0,
                     "the exited graph to leave the scrape")
            assert "snabbpy_link_counter_total" not in _scrape(url)
        finally:
            _stop(exporter)
        assert exporter.returncode == 0
