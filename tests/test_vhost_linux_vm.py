"""Linux's own virtio_net driver, in a VM-lab guest, against VhostUser on
the host: QEMU is the vhost-user frontend, the guest kernel drives the
rings (indirect descriptors, event index, merged receive buffers,
interrupts through the call eventfd). VhostUser echoes every frame; the
guest checks 60, 1500 and 9000-byte frames come back intact
(snabbpy/vm/guest/linux_guest.py). Needs scripts/setup-vm-lab.sh."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from snabbpy.vm.kernel import VMAssetsMissing, find_assets

pytestmark = [pytest.mark.vm, pytest.mark.interop]
REPO = Path(__file__).resolve().parents[1]
ECHO = """
apps:
  vhost: {{class: vhost.VhostUser, config: {{socket_path: {sock}}}}}
links:
  - vhost.output -> vhost.input
"""


@pytest.fixture(autouse=True)
def lab_ready():
    try:
        find_assets()
        if not shutil.which("qemu-system-x86_64"):
            raise VMAssetsMissing("qemu-system-x86_64 not installed")
    except VMAssetsMissing as e:
        message = f"VM lab not set up ({e}); run scripts/setup-vm-lab.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def run_guest(tmp_path, echo: str, net: str, *guest: str):
    """Runs the host graph ``echo`` (its socket: ``{sock}``) and, in a lab
    guest with ``--net vhost-user:SOCK<net>``, ``python3 -m`` ``guest``;
    returns the finished process and the guest's RESULT line, decoded."""
    sock = tmp_path / "echo.sock"
    graph = tmp_path / "echo.yaml"
    graph.write_text(echo.format(sock=sock))
    argv = [sys.executable, "-m", "snabbpy.vm.cli", "run", "--timeout", "500",
            "--host-run", str(graph), "--net", f"vhost-user:{sock}{net}", "--",
            "python3", "-m", *guest]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"status {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result, json.loads(lines[-1][len("RESULT "):])


@pytest.mark.parametrize("ring", ["split", "packed"])
def test_linux_virtio_net_frames_come_back_through_vhost_user(tmp_path, ring):
    """Split rings, and packed rings (QEMU's packed=on: the guest kernel's
    packed virtqueue against packed_device.c)."""
    net = ",packed=on" if ring == "packed" else ""
    result, report = run_guest(tmp_path, ECHO, net, "snabbpy.vm.guest.linux_guest",
                               "0000:00:05.0", "50")
    for echo in report["echo"]:
        assert echo["back"] == echo["sent"] == 50 and echo["corrupt"] == 0, report
    assert report["stats"]["rx_errors"] == report["stats"]["rx_dropped"] == 0
    assert result.returncode == 0, result.stderr[-3000:]
    # The host graph's final report (on stderr): no bad descriptor of any kind.
    bad = re.findall(r"([rt]xq_bad_\w+): ([\d,]+)", result.stderr)
    assert bad and all(n == "0" for _, n in bad), bad
    # The ring's last position says which kind it was: a packed position
    # carries its wrap counter in bit 15 (still 1: ~150 frames are one lap
    # of a 256-slot ring); a split index of 150 frames never has it.
    avail = re.findall(r"tx \(from guest\): \w+, size \d+, avail (\d+)", result.stderr)
    assert avail and int(avail[-1]) & 0x7FFF >= 150, avail
    assert int(avail[-1]) >> 15 == (ring == "packed"), avail


ECHO_MQ = """
apps:
  vhost: {{class: vhost.VhostUser, config: {{socket_path: {sock}, queues: 2}}}}
links:
  - vhost.output -> vhost.input
  - vhost.output1 -> vhost.input1
"""


@pytest.mark.parametrize("ring", ["split", "packed"])
def test_linux_guest_flows_land_on_both_queue_pairs(tmp_path, ring):
    """mq=on, and with packed=on too (QEMU serves the guest's packed control
    queue itself and enables pair 1 with SET_VRING_ENABLE)."""
    net = ",queues=2" + (",packed=on" if ring == "packed" else "")
    result, report = run_guest(tmp_path, ECHO_MQ, net,
                               "snabbpy.vm.guest.linux_guest_mq", "0000:00:05.0", "2")
    assert report["channels"]["combined_count"] == 2, report
    assert report["rx_packets"] >= report["sent"], report
    assert result.returncode == 0, result.stderr[-3000:]
    # The host's final report: both pairs carried the guest's flows, both ways.
    counts = {k: int(v.replace(",", "")) for k, v in
              re.findall(r"\b([rt]xq1?_packets): ([\d,]+)", result.stderr)}
    assert all(counts.get(k, 0) > 0 for k in ("txq_packets", "txq1_packets",
                                               "rxq_packets", "rxq1_packets")), counts
    assert counts["txq_packets"] + counts["txq1_packets"] >= report["sent"], counts
    bad = re.findall(r"([rt]xq1?_bad_\w+): ([\d,]+)", result.stderr)
    assert bad and all(n == "0" for _, n in bad), bad
    rings = re.findall(r"pair (\d) [rt]x \(\w+ guest\): .*packets(, packed ring)?$",
                       result.stderr, re.MULTILINE)
    assert {k for k, _ in rings} == {"0", "1"}, rings
    assert all(bool(packed) == (ring == "packed") for _, packed in rings), rings
