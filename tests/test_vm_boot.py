"""Real guests: boot the lab VM (TCG or KVM) and run commands inside it.

These need the assets from scripts/setup-vm-lab.sh. Without them the tests
fail under CI (CI set) and are skipped elsewhere.
"""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import need_vm_lab

pytestmark = pytest.mark.vm
REPO = Path(__file__).resolve().parents[1]
HANG_GUARD = 600  # seconds; only so a broken guest cannot hang the suite


@pytest.fixture(autouse=True)
def lab_ready():
    need_vm_lab()


def vm_run(*args):
    argv = [sys.executable, "-m", "snabbpy.vm.cli", "run", *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=HANG_GUARD)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_guest_runs_python_and_returns_its_exit_status():
    result = vm_run("--", "python3", "-c",
                    'import sys; print("hello from guest"); sys.exit(3)')
    assert result.returncode == 3, result.stderr
    assert result.stdout == "hello from guest\n"


PROBE = """
import json, os
from snabbpy.lib import pci
devs = {}
for addr in sorted(os.listdir("/sys/bus/pci/devices")):
    d = "/sys/bus/pci/devices/" + addr
    read = lambda name: open(d + "/" + name).read().strip()
    devs[addr] = {"vendor": read("vendor"), "device": read("device"), "class": read("class"),
                  "driver": os.path.exists(d + "/driver")}
print(json.dumps({"devices": devs, "virtio_net": pci.list_virtio_net(),
                  "hugepages": open("/proc/sys/vm/nr_hugepages").read().strip()}))
"""


def test_guest_sees_unbound_virtio_net_devices_at_fixed_addresses():
    result = vm_run("--hugepages", "16", "--net", f"socket:listen={free_port()}",
                    "--net", f"socket:udp={free_port()},localaddr={free_port()},"
                    "mode=modern,queue=1024",
                    "--", "python3", "-c", PROBE)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads(result.stdout)
    legacy, modern = seen["devices"]["0000:00:05.0"], seen["devices"]["0000:00:06.0"]
    assert (legacy["vendor"], legacy["device"], legacy["class"]) == ("0x1af4", "0x1000", "0x020000")
    assert (modern["vendor"], modern["device"]) == ("0x1af4", "0x1041")
    assert not legacy["driver"] and not modern["driver"]  # free for a userspace driver
    assert seen["devices"]["0000:00:03.0"]["driver"]  # the 9p root keeps virtio-pci
    assert seen["virtio_net"] == ["0000:00:05.0", "0000:00:06.0"]
    assert seen["hugepages"] == "16"


def test_timeout_kills_the_guest_and_says_so():
    result = vm_run("--timeout", "2", "--", "sleep", "600")
    assert result.returncode == 124
    assert "did not finish within 2 s" in result.stderr


def test_share_workdir_and_env_reach_the_command(tmp_path):
    # The guest's /tmp is its own tmpfs: a host dir under /tmp needs --share.
    result = vm_run("--share", str(tmp_path), "--workdir", str(tmp_path),
                    "--env", "GREETING=hi there", "--", "sh", "-c",
                    'echo "$GREETING from $(pwd)"; echo oops >&2; echo written > out.txt')
    assert result.returncode == 0, result.stderr
    # The guest console merges stderr into stdout.
    assert result.stdout == f"hi there from {tmp_path}\noops\n"
    assert (tmp_path / "out.txt").read_text() == "written\n"
