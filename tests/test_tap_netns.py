"""Tap on real TAP devices inside network namespaces the test makes (and
always removes): a Tap bridged to a veth by RawSocket lets one namespace
ping the other through snabbpy; devices are created and removed, or
attached and left. Needs root and iproute2 (scripts/install-netutils.sh)."""

import os
import signal
import subprocess

import pytest
from helpers import SNABBPY, need_root, wait_for

from snabbpy.apps.socket import netns
from snabbpy.core import config, registry
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine

pytestmark = [pytest.mark.root]
TAP = "sbtap0"


def link_exists(ns: str, name: str) -> bool:
    return subprocess.run(["ip", "-n", ns, "link", "show", name],
                          capture_output=True).returncode == 0


def start(ns: str, cfg) -> subprocess.Popen:
    return subprocess.Popen(netns.command(ns, [*SNABBPY, "run", str(cfg),
                                               "--report-interval", "0"]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(run: subprocess.Popen) -> tuple[str, str]:
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    return out, err


BRIDGE = """
apps:
  tap: {{class: tap.Tap, config: {{name: {tap}, mtu: 1500}}}}
  raw: {{class: socket.RawSocket, config: {{ifname: {veth}}}}}
links:
  - tap.output -> raw.input
  - raw.output -> tap.input
"""


def test_a_namespace_pings_the_other_through_tap_and_rawsocket(tmp_path, shm):
    need_root("ip", "ping")
    cfg = tmp_path / "bridge.yaml"
    with netns.veth_pair("snabbpy-tap", address_a=False) as (a, b):
        cfg.write_text(BRIDGE.format(tap=TAP, veth=a.ifname))
        run = start(a.netns, cfg)
        try:
            wait_for(lambda: link_exists(a.netns, TAP) or run.poll() is not None, "the tap")
            assert run.poll() is None, run.communicate()[1]
            netns.ip("-n", a.netns, "addr", "add", "10.77.0.1/24", "dev", TAP)
            ping = netns.run(a, ["ping", "-c", "3", "-W", "10", b.address], timeout=120)
            stats = registry.read_process(registry.list_processes()[0])["apps"]
        finally:
            out, _ = stop(run)
        assert "3 received" in ping.stdout and "DUP!" not in ping.stdout, ping.stdout
        assert stats["tap"]["rx_packets"] >= 4 and stats["raw"]["rx_packets"] >= 4  # ARP + ICMP
        assert "device sbtap0: created (removed on stop)" in out
        assert not link_exists(a.netns, TAP)


def test_an_existing_tap_is_attached_and_left_in_place(tmp_path, shm):
    need_root("ip")
    cfg = tmp_path / "tap.yaml"
    cfg.write_text(f"""
apps:
  tap: {{class: tap.Tap, config: {{name: {TAP}, mtu: 9000}}}}
  sink: {{class: basic.Sink}}
links:
  - tap.output -> sink.input
""")
    with netns.namespace(f"snabbpy-tapp-{os.getpid()}") as ns:
        netns.ip("-n", ns, "tuntap", "add", "dev", TAP, "mode", "tap")
        run = start(ns, cfg)
        try:
            wait_for(lambda: registry.list_processes() or run.poll() is not None, "the run")
            wait_for(lambda: "mtu 9000" in netns.run(ns, ["ip", "link", "show", TAP]).stdout,
                     "MTU 9000")
            shown = netns.run(ns, ["ip", "link", "show", TAP]).stdout
        finally:
            out, _ = stop(run)
        assert "UP" in shown
        assert "device sbtap0: attached (left in place)" in out
        assert link_exists(ns, TAP)


def test_an_interface_that_is_not_a_tap_is_refused():
    need_root("ip")
    with netns.namespace(f"snabbpy-tapx-{os.getpid()}") as ns:
        r = subprocess.run(netns.command(ns, [*SNABBPY, "selftest", "apps.tap", "lo"]),
                           capture_output=True, text=True)
    assert r.returncode == 2
    assert "name 'lo': the interface exists and is not a TAP device" in r.stderr


@pytest.mark.parametrize("conf,message", [
    ({"name": "a-name-far-too-long"}, "not an interface name"),
    ({"name": "x/y"}, "not an interface name"),
    ({"name": "tapz", "mtu": 20000}, "mtu 20000 is outside 68..10226"),
])
def test_bad_configs_are_refused_before_touching_the_kernel(conf, message):
    c = config.new()
    with pytest.raises(ConfigError, match=message):
        config.app(c, "tap", "tap.Tap", conf)
        Engine().configure(c)
