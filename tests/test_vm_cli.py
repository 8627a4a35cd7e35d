"""`snabbpy vm` on the command line: options, and errors without tracebacks."""

import pytest
from click.testing import CliRunner

from snabbpy.vm import cli
from snabbpy.vm.runner import RunResult, VMTimeout


@pytest.fixture
def captured(monkeypatch):
    seen = {}

    def fake_run(opts, out, noise=None):
        seen["opts"] = opts
        out("guest says hi\n")
        return RunResult(status=3, accel="tcg", boot_seconds=1.0, total_seconds=2.0)

    monkeypatch.setattr(cli, "run", fake_run)
    return seen


def invoke(*args):
    return CliRunner().invoke(cli.vm, list(args))


def test_run_passes_options_and_returns_the_command_status(captured):
    result = invoke("run", "--memory", "512", "--cpus", "2", "--hugepages", "8",
                    "--net", "socket:listen=9000", "--env", "A=b", "--",
                    "python3", "-c", "print(1)")
    assert result.exit_code == 3
    assert result.output == "guest says hi\n"
    opts = captured["opts"]
    assert list(opts.argv) == ["python3", "-c", "print(1)"]
    assert (opts.memory_mib, opts.cpus, opts.hugepages) == (512, 2, 8)
    assert opts.nets[0].socket == {"listen": "127.0.0.1:9000"}
    assert opts.env == {"A": "b"} and opts.accel == "auto"


@pytest.mark.parametrize("flags, accel", [
    ([], "auto"), (["--kvm"], "kvm"), (["--no-kvm"], "tcg"), (["--accel", "tcg"], "tcg"),
])
def test_accelerator_flags(captured, flags, accel):
    assert invoke("run", *flags, "--", "true").exit_code == 3
    assert captured["opts"].accel == accel


def test_command_options_after_double_dash_are_the_commands(captured):
    invoke("run", "--", "ls", "--verbose", "-l")
    assert list(captured["opts"].argv) == ["ls", "--verbose", "-l"]
    assert captured["opts"].verbose is False


def test_bad_net_spec_is_a_usage_error_not_a_traceback():
    result = invoke("run", "--net", "socket:listen=0.0.0.0:80", "--", "true")
    assert result.exit_code == 2
    assert "must use 127.0.0.1" in result.output
    assert "Traceback" not in result.output


def test_bad_env_is_a_usage_error():
    result = invoke("run", "--env", "NOEQUALS", "--", "true")
    assert result.exit_code == 2 and "expected NAME=VALUE" in result.output


def test_missing_assets_name_the_setup_script(monkeypatch, tmp_path):
    monkeypatch.setenv("SNABBPY_VM_CACHE", str(tmp_path))
    result = invoke("run", "--", "true")
    assert result.exit_code == cli.EXIT_VM_ERROR
    assert "scripts/setup-vm-lab.sh" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_timeout_exits_124(monkeypatch):
    def slow(opts, out, noise=None):
        raise VMTimeout("guest did not finish within 1 s")

    monkeypatch.setattr(cli, "run", slow)
    result = invoke("run", "--timeout", "1", "--", "sleep", "9")
    assert result.exit_code == cli.EXIT_TIMEOUT and "did not finish" in result.output


def test_a_command_is_required():
    assert invoke("run").exit_code == 2


def test_command_options_need_no_double_dash(captured):
    invoke("run", "--cpus", "2", "ls", "-l", "--cpus", "3")
    assert list(captured["opts"].argv) == ["ls", "-l", "--cpus", "3"]
    assert captured["opts"].cpus == 2


def test_misspelt_option_is_an_error_not_part_of_the_command(captured):
    result = invoke("run", "--memroy", "512", "--", "true")
    assert result.exit_code == 2 and "No such option" in result.output
