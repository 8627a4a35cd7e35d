"""The console filter: boot noise out, command output through, status parsed."""

from snabbpy.vm.initramfs import GuestCommand
from snabbpy.vm.runner import ConsoleFilter, guest_env


def feed(lines, verbose=False):
    out, noise = [], []
    filt = ConsoleFilter(GuestCommand(argv=["x"], token="t0"), out.append,
                         noise.append if verbose else None, clock=lambda: 42.0)
    for line in lines:
        filt.feed_line(line)
    return filt, "".join(out), "".join(noise)


BOOT = ["SeaBIOS\r\n", "[    0.1] kernel noise\r\n", "SNABBPY-VM-START-t0\r\n"]


def test_output_between_markers_with_crlf_undone():
    filt, out, _ = feed(BOOT + ["hello\r\n", "world\r\n", "SNABBPY-VM-EXIT-t0 3\r\n",
                                "[    4.2] reboot: Power down\r\n"])
    assert out == "hello\nworld\n"
    assert filt.status == 3 and filt.started_at == 42.0


def test_noise_is_shown_only_when_verbose():
    _, _, quiet = feed(BOOT + ["SNABBPY-VM-EXIT-t0 0\r\n"])
    _, _, loud = feed(BOOT + ["SNABBPY-VM-EXIT-t0 0\r\n", "bye\r\n"], verbose=True)
    assert quiet == ""
    assert "kernel noise" in loud and "bye" in loud


def test_marker_after_output_without_newline():
    filt, out, _ = feed(BOOT + ["no newline SNABBPY-VM-EXIT-t0 0\r\n"])
    assert out == "no newline " and filt.status == 0


def test_markers_of_another_boot_are_plain_output():
    filt, out, _ = feed(BOOT + ["SNABBPY-VM-EXIT 0\r\n", "SNABBPY-VM-EXIT-t0 7\r\n"])
    assert out == "SNABBPY-VM-EXIT 0\n" and filt.status == 7


def test_setup_errors_are_collected():
    filt, _, _ = feed(["SNABBPY-VM-ERROR-t0: mount 9p hostroot\r\n", "SNABBPY-VM-EXIT-t0 125\r\n"])
    assert filt.errors == ["mount 9p hostroot"]
    assert filt.status is None  # no start marker: the command never ran


def test_guest_env_puts_our_python_first(monkeypatch):
    import os
    import sys
    monkeypatch.setenv("PYTHONPATH", "/work/main")
    env = guest_env({"EXTRA": "1"})
    assert env["PATH"].startswith(os.path.dirname(sys.executable) + ":")
    assert env["PYTHONPATH"] == "/work/main" and env["EXTRA"] == "1"
    assert env["SNABBPY_IN_VM"] == "1"


def test_a_checkout_under_tmp_is_shared_with_the_guest(tmp_path, monkeypatch):
    from snabbpy.vm import runner

    checkout = tmp_path / "clone"  # pytest's tmp_path lives under /tmp
    checkout.mkdir()
    assert str(checkout.resolve()) in runner.needed_by_guest(str(checkout))
    shares = runner._shares([], runner.needed_by_guest(str(checkout)))
    assert str(checkout.resolve()) in [s.path for s in shares]


def test_directories_outside_the_guests_own_mounts_are_not_shared(tmp_path):
    from snabbpy.vm import runner

    assert "/usr/lib" not in runner.needed_by_guest("/usr/lib")


def test_a_needed_directory_inside_a_share_is_not_shared_twice(tmp_path):
    from snabbpy.vm import runner

    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    shares = runner._shares([str(tmp_path)], [str(inner)])
    assert [s.path for s in shares] == [str(tmp_path)]


def test_shares_mount_parents_first(tmp_path):
    from snabbpy.vm import runner

    (tmp_path / "x" / "y").mkdir(parents=True)
    shares = runner._shares([str(tmp_path / "x" / "y")], [str(tmp_path)])
    assert [s.path for s in shares] == [str(tmp_path), str(tmp_path / "x" / "y")]
