"""`snabbpy vm run --host-run`: the host graph's life around the guest,
without booting one."""

import pytest

from snabbpy.vm.hostrun import HostGraph, HostRunError
from snabbpy.vm.netspec import parse_net


def test_a_missing_graph_file_is_named():
    with pytest.raises(HostRunError, match="no such graph file 'nope.yaml'"):
        HostGraph("nope.yaml")


def test_a_graph_that_fails_to_start_is_reported(tmp_path):
    graph = tmp_path / "bad.yaml"
    graph.write_text("apps:\n  x: {class: basic.NoSuchApp}\n")
    with open(tmp_path / "log", "w") as log:
        host = HostGraph(str(graph), log=log)
        with pytest.raises(HostRunError, match="exited with status 2 before the guest started"):
            host.start([parse_net(f"vhost-user:{tmp_path}/never.sock")])
    assert "NoSuchApp" in (tmp_path / "log").read_text()


def vhost_graph(tmp_path):
    """A host graph of one VhostUser listening at tmp_path/vm.sock: (graph, socket)."""
    sock = tmp_path / "vm.sock"
    graph = tmp_path / "host.yaml"
    graph.write_text(f"apps:\n  vhost: {{class: vhost.VhostUser, config: "
                     f"{{socket_path: '{sock}'}}}}\n")
    return graph, sock


def test_the_graph_runs_until_stopped_and_listens_first(tmp_path):
    graph, sock = vhost_graph(tmp_path)
    with open(tmp_path / "log", "w") as log:
        host = HostGraph(str(graph), log=log)
        host.start([parse_net(f"vhost-user:{sock}")])
        assert sock.is_socket() and host.proc.poll() is None
        assert host.stop() == 0
    assert "link report" in (tmp_path / "log").read_text()


def test_a_checkout_in_the_current_directory_does_not_shadow_the_host_graph(
        tmp_path, monkeypatch):
    (tmp_path / "snabbpy").mkdir()
    (tmp_path / "snabbpy" / "__init__.py").write_text("raise ImportError('unbuilt checkout')\n")
    monkeypatch.chdir(tmp_path)
    graph, sock = vhost_graph(tmp_path)
    with open(tmp_path / "log", "w") as log:
        host = HostGraph(str(graph), log=log)
        host.start([parse_net(f"vhost-user:{sock}")])
        assert host.stop() == 0
    assert "unbuilt checkout" not in (tmp_path / "log").read_text()
