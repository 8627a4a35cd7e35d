"""VGuest against snabbpy's own VhostUser in another process: the device
side and the driver side, written apart, must agree on every packet."""

from __future__ import annotations

import pytest

from snabbpy.apps.vguest import selftest
from snabbpy.apps.vguest.selftest.loopback import run, start_vhost_user, stop_vhost_user


def test_selftest_with_no_arguments_passes(capsys, no_leaks):
    assert selftest() == 0
    out = capsys.readouterr().out
    assert "backend vhost.VhostUser in process" in out
    assert "sent 10,000, received 10,000" in out


@pytest.mark.parametrize("size", [60, 1514, 9000])
def test_every_size_comes_back_intact(size, no_leaks):
    assert selftest("--packets", "3000", "--size", str(size)) == 0


def test_selftest_reads_options_from_the_environment(monkeypatch, capsys, no_leaks):
    monkeypatch.setenv("SNABBPY_VGUEST_PACKETS", "777")
    assert selftest() == 0
    assert "sent 777, received 777" in capsys.readouterr().out


@pytest.mark.parametrize("nic", [{"mrg_rxbuf": False}, {"event_idx": True},
                                 {"queue_size": 1024}, {"packed": False},
                                 {"packed": False, "event_idx": True},
                                 # packed rings need no power of two: odd sizes both ends
                                 {"queue_size": 1000}, {"queue_size": 3},
                                 {"queue_size": 255, "event_idx": True}])
def test_options_against_vhost_user(tmp_path, nic, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    backend = start_vhost_user(tmp_path, sock)
    try:
        counts = run({"vhost_user": sock, **nic}, 3000, 1000)
    finally:
        stop_vhost_user(backend)
    assert counts["sent"] == counts["received"] == 3000 and counts["corrupt"] == 0


def test_vguest_as_server_with_vhost_user_connecting(tmp_path, no_leaks):
    sock = str(tmp_path / "vhost.sock")
    backend = start_vhost_user(tmp_path, sock, is_server=False)
    try:
        counts = run({"vhost_user": sock, "is_server": True}, 2000, 60)
    finally:
        stop_vhost_user(backend)
    assert counts["received"] == 2000


def test_cli_selftest_exits_zero_when_every_packet_returns():
    import subprocess

    done = subprocess.run(["snabbpy", "selftest", "apps.vguest", "--packets", "500"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sent 500, received 500" in done.stdout


def test_cli_selftest_rejects_bad_options_with_status_2():
    import subprocess

    done = subprocess.run(["snabbpy", "selftest", "apps.vguest", "--packets", "0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--packets" in done.stderr
