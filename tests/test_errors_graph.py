"""Issue 14, graphs and the CLI: every bad graph one clear line (exit 2),
every fault in a user's app reported (exit 1), and the end-of-graph rule."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner

from snabbpy.cli import main
from snabbpy.core import config, packet
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine

SNABBPY = [sys.executable, "-m", "snabbpy"]


def write(tmp_path, text, name="graph.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, *words):
    """Exit 2, one line on stderr naming ``words``, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    out = result.output.strip()
    assert "Traceback" not in out, out
    assert len(out.splitlines()) == 1, out
    for w in words:
        assert w in out, (w, out)
    return out


def graph(links, **apps):
    c = config.new()
    for name, cls in apps.items():
        config.app(c, name, cls)
    for spec in links:
        config.link(c, spec)
    return c


# -- ports -----------------------------------------------------------------

def test_an_unknown_output_port_is_refused_naming_the_ports_there_are():
    c = config.new()
    config.app(c, "src", "basic.Source")
    config.app(c, "t", "basic.Truncate", {"size": 60})
    config.link(c, "src.output -> t.input")
    config.link(c, "t.outptu -> src.x")
    with pytest.raises(ConfigError, match=r"'t'.*Truncate.*no output port 'outptu'.*output"):
        config.check(c)


def test_an_unknown_input_port_is_refused():
    c = config.new()
    config.app(c, "src", "basic.Source")
    config.app(c, "t", "basic.Truncate", {"size": 60})
    config.link(c, "src.output -> t.inptu")
    with pytest.raises(ConfigError, match=r"'t'.*Truncate.*no input port 'inptu'.*input"):
        config.check(c)


def test_a_writer_has_no_output_and_a_source_no_input(tmp_path):
    c = config.new()
    config.app(c, "w", "pcap.PcapWriter", {"path": str(tmp_path / "o.pcap")})
    config.app(c, "src", "basic.Source")
    config.link(c, "w.output -> src.input")
    with pytest.raises(ConfigError, match=r"'w'.*PcapWriter.*has no output ports"):
        config.check(c)


def test_any_number_of_ports_where_the_app_says_so():
    config.check(graph(["src.output -> tee.input", "tee.a -> sink.x", "tee.b -> sink.y"],
                       src="basic.Source", tee="basic.Tee", sink="basic.Sink"))


def test_a_users_class_that_declares_nothing_takes_any_port():
    class Free:
        def push(self):
            pass
    c = config.new()
    config.app(c, "src", "basic.Source")
    config.app(c, "f", Free)
    config.link(c, "src.output -> f.whatever")
    config.check(c)


def test_every_built_in_app_declares_its_ports():
    import importlib
    import pkgutil

    import snabbpy.apps
    from snabbpy.core.app import App
    found = 0
    for mod in pkgutil.walk_packages(snabbpy.apps.__path__, "snabbpy.apps."):
        if "selftest" in mod.name:
            continue
        m = importlib.import_module(mod.name)
        for obj in vars(m).values():
            if isinstance(obj, type) and issubclass(obj, App) and obj is not App \
                    and obj.__module__ == m.__name__ and not obj.__name__.startswith("_"):
                found += 1
                assert obj.inputs is not None and obj.outputs is not None, obj
    assert found >= 12


# -- YAML and names ----------------------------------------------------------

@pytest.mark.parametrize("body, words", [
    ("apps:\n  src: {class: basic.Source, config: {size: null}}\n", ["src", "size"]),
    ("apps:\n  src: {class: 5}\n", ["src", "class", "5"]),
    ("apps:\n  src: {class: [basic.Source]}\n", ["src", "class"]),
    ("apps:\n  src: {class: basic.Source}\n  src: {class: basic.Sink}\n",
     ["duplicate key", "src", "line 3"]),
    ("apps:\n  src: {class: basic.Source, config: {size: 1, size: 2}}\n",
     ["duplicate key", "size"]),
    ("apps:\n  src: {class: basic.Source}\n  sink: {class: basic.Sink}\n"
     "links: [src.output -> sink.input, src.output -> sink.input]\n",
     ["twice", "src.output -> sink.input"]),
    ("apps:\n  " + "a" * 61 + ": {class: basic.Sink}\n", ["app name", "60"]),
    ("apps:\n  src: {class: basic.Source}\n  sink: {class: basic.Sink}\n"
     "links: [src.output -> sink." + "p" * 61 + "]\n", ["port name", "60"]),
])
def test_bad_graphs_are_one_line(tmp_path, body, words):
    path = write(tmp_path, body)
    one_line_error(run_cli("run", path, "--duration", "0.01"), *words)


def test_a_yaml_file_that_is_not_utf8_is_one_line_for_run_and_graph(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_bytes(b"apps:\n  src: {class: basic.Source}\n# caf\xe9\xff\n")
    one_line_error(run_cli("run", path), "UTF-8")
    one_line_error(run_cli("graph", path), "UTF-8")


def test_an_alias_bomb_is_refused_and_never_printed(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("apps:\n  src: {class: basic.Source, config: {size: *a8}}")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    result = run_cli("run", path)
    out = one_line_error(result, "alias")
    assert len(out) < 400 and time.monotonic() - started < 10


def test_a_huge_bad_value_is_not_printed_whole(tmp_path):
    path = write(tmp_path, "apps:\n  src: {class: basic.Source, config: {size: '"
                 + "x" * 100_000 + "'}}\n")
    out = one_line_error(run_cli("run", path), "size")
    assert len(out) < 400


@pytest.mark.parametrize("source, words", [
    ("raise RuntimeError('no licence')\n", ["badmod", "RuntimeError", "no licence", "line 1"]),
    ("x = 1\ndef f(:\n", ["badmod", "SyntaxError", "line 2"]),
])
def test_a_users_module_that_fails_at_import_is_one_line(tmp_path, source, words):
    (tmp_path / "badmod.py").write_text(source)
    path = write(tmp_path, "apps:\n  x: {class: 'badmod:X'}\n")
    sys.modules.pop("badmod", None)
    one_line_error(run_cli("run", path), *words)


# -- CLI options -------------------------------------------------------------

GOOD = ("apps:\n  src: {class: basic.Source}\n  sink: {class: basic.Sink}\n"
        "links: [src.output -> sink.input]\n")


@pytest.mark.parametrize("opts, word", [
    (["--duration", "nan"], "--duration"),
    (["--duration", "inf"], "--duration"),
    (["--duration", "-1"], "--duration"),
    (["--report-interval", "-1"], "--report-interval"),
    (["--report-interval", "0.000001"], "--report-interval"),
])
def test_bad_numbers_on_the_command_line(tmp_path, opts, word):
    result = run_cli("run", write(tmp_path, GOOD), *opts)
    assert result.exit_code == 2 and word in result.output and "Traceback" not in result.output


def test_report_json_into_a_missing_directory_is_refused_before_running(tmp_path):
    started = time.monotonic()
    result = run_cli("run", write(tmp_path, GOOD), "--duration", "3",
                     "--report-json", tmp_path / "no" / "r.json")
    one_line_error(result, "--report-json", "no such directory")
    assert time.monotonic() - started < 2


def test_graph_output_into_a_missing_directory(tmp_path):
    one_line_error(run_cli("graph", write(tmp_path, GOOD), "-o", tmp_path / "no" / "g.dot"),
                   "no such directory")


def test_a_counter_directory_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SNABBPY_SHM", "/proc/snabbpy-cannot")
    one_line_error(run_cli("run", write(tmp_path, GOOD), "--duration", "0.05"),
                   "/proc/snabbpy-cannot", "counters")


# -- a user's app that fails -------------------------------------------------

FAULTY = '''
from snabbpy.core.app import App

class Faulty(App):
    inputs, outputs = ("input",), ()
    def __init__(self, conf):
        if self.name == "f_init":
            helper_that_fails("init")
    def push(self):
        if self.name == "f_push":
            helper_that_fails("push")
    def tick(self):
        if self.name == "f_tick":
            helper_that_fails("tick")
    def stop(self):
        if self.name == "f_stop":
            helper_that_fails("stop")

def helper_that_fails(where):
    raise ValueError("broken in " + where)
'''


@pytest.mark.parametrize("name, method", [
    ("f_init", "__init__"), ("f_push", "push"), ("f_tick", "tick"), ("f_stop", "stop"),
])
def test_a_users_app_that_raises(tmp_path, name, method):
    (tmp_path / "faulty.py").write_text(FAULTY)
    path = write(tmp_path, f"""
        apps:
          src: {{class: basic.Source}}
          {name}: {{class: 'faulty:Faulty'}}
        links: [src.output -> {name}.input]
    """)
    report = tmp_path / "r.json"
    shm = tmp_path / "shm"
    proc = subprocess.run(SNABBPY + ["run", str(path), "--duration", "0.2",
                                     "--report-json", str(report)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={**os.environ, "SNABBPY_SHM": str(shm)})
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    err = proc.stderr
    assert f"app '{name}' (Faulty) failed in {method}()" in err, err
    assert "ValueError: broken in" in err and "helper_that_fails" in err, err
    assert "faulty.py" in err
    assert "click" not in err and "engine.py" not in err, err
    assert report.exists(), err
    if method != "__init__":
        assert "src.output" in proc.stdout, proc.stdout
    assert not shm.exists() or not list(shm.iterdir())


def test_the_other_apps_are_stopped_when_one_fails():
    stopped = []

    class Bad:
        inputs, outputs = ("input",), ()
        def __init__(self, conf):
            pass
        def push(self):
            raise KeyError("x")

    class Good:
        inputs, outputs = (), ("output",)
        def __init__(self, conf):
            pass
        def pull(self):
            pass
        def stop(self):
            stopped.append(True)

    c = config.new()
    config.app(c, "good", Good)
    config.app(c, "bad", Bad)
    config.link(c, "good.output -> bad.input")
    from snabbpy.core.engine import AppError
    e = Engine()
    e.configure(c)
    with pytest.raises(AppError) as info:
        e.breathe()
    assert info.value.app == "bad" and info.value.method == "push"
    e.stop()
    assert stopped == [True]


# -- signals -----------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT])
def test_hup_and_quit_stop_a_run_like_term(tmp_path, sig):
    report = tmp_path / "r.json"
    proc = subprocess.Popen(SNABBPY + ["run", str(write(tmp_path, GOOD)), "--report-interval", "0",
                                       "--report-json", str(report)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SNABBPY_SHM": str(tmp_path / "shm")})
    deadline = time.monotonic() + 30
    while not (tmp_path / "shm" / str(proc.pid)).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, (out, err)
    assert "src.output -> sink.input" in out
    assert json.loads(report.read_text())["links"]
    assert not (tmp_path / "shm" / str(proc.pid)).exists()


# -- files -------------------------------------------------------------------

def test_a_fifo_as_reader_path_is_refused(tmp_path):
    fifo = tmp_path / "f.pcap"
    os.mkfifo(fifo)
    path = write(tmp_path, f"""
        apps:
          r: {{class: pcap.PcapReader, config: {{path: '{fifo}'}}}}
          sink: {{class: basic.Sink}}
        links: [r.output -> sink.input]
    """)
    started = time.monotonic()
    one_line_error(run_cli("run", path, "--duration", "0.5"), "'r'", "FIFO")
    assert time.monotonic() - started < 5


def test_a_reader_and_a_writer_on_one_file_are_refused(tmp_path):
    from snabbpy.lib import pcap
    pc = tmp_path / "same.pcap"
    pc.write_bytes(pcap.build_file([(pcap.RecordHeader(1, 0, 60, 60), bytes(60))]))
    before = pc.read_bytes()
    alias = tmp_path / "alias.pcap"
    alias.symlink_to(pc)
    path = write(tmp_path, f"""
        apps:
          r: {{class: pcap.PcapReader, config: {{path: '{pc}'}}}}
          w: {{class: pcap.PcapWriter, config: {{path: '{alias}'}}}}
        links: [r.output -> w.input]
    """)
    one_line_error(run_cli("run", path, "--duration", "0.2"), "'r'", "'w'", "same file")
    assert pc.read_bytes() == before


# -- warnings ----------------------------------------------------------------

def test_a_cycle_with_no_way_out_and_an_app_with_no_links_warn(tmp_path):
    path = write(tmp_path, """
        apps:
          src: {class: basic.Source}
          a: {class: basic.Join}
          b: {class: basic.Join}
          lone: {class: basic.Sink}
        links: [src.output -> a.in1, a.output -> b.input, b.output -> a.in2]
    """)
    result = CliRunner().invoke(main, ["run", str(path), "--duration", "0.05",
                                       "--report-interval", "0"])
    assert result.exit_code == 0, result.output
    warnings = [w for w in result.output.splitlines() if w.startswith("snabbpy: warning:")]
    assert any("cycle" in w and "'a'" in w and "'b'" in w for w in warnings), result.output
    assert any("'lone'" in w and "no links" in w for w in warnings), result.output
    assert len(warnings) == 2


def test_a_cycle_with_a_way_out_does_not_warn():
    c = graph(["src.output -> a.in1", "a.output -> t.input", "t.back -> a.in2", "t.out -> s.input"],
              src="basic.Source", a="basic.Join", t="basic.Tee", s="basic.Sink")
    assert config.warnings(c) == []


# -- the end of a graph ------------------------------------------------------

def test_a_repeater_after_a_reader_keeps_the_graph_running(tmp_path):
    from snabbpy.lib import pcap
    cap = tmp_path / "in.pcap"
    cap.write_bytes(pcap.build_file([(pcap.RecordHeader(1, 0, 60, 60), bytes(60))]))
    c = config.new()
    config.app(c, "r", "pcap.PcapReader", {"path": str(cap)})
    config.app(c, "rep", "basic.Repeater")
    config.app(c, "sink", "basic.Sink")
    config.link(c, "r.output -> rep.input")
    config.link(c, "rep.output -> sink.input")
    e = Engine()
    e.configure(c)
    for _ in range(20):
        e.breathe()
    assert not e.finished()
    e.stop()


def test_a_reader_alone_still_ends_the_graph(tmp_path):
    from snabbpy.lib import pcap
    cap = tmp_path / "in.pcap"
    cap.write_bytes(pcap.build_file([(pcap.RecordHeader(1, 0, 60, 60), bytes(60))]))
    c = config.new()
    config.app(c, "r", "pcap.PcapReader", {"path": str(cap)})
    config.app(c, "sink", "basic.Sink")
    config.link(c, "r.output -> sink.input")
    e = Engine()
    e.configure(c)
    for _ in range(5):
        e.breathe()
    assert e.finished()
    e.stop()
    assert packet.in_use() >= 0
