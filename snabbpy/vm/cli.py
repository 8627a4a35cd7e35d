"""`snabbpy vm`: run a command in a throwaway QEMU guest, or set the lab up.

Exit status of `vm run` is the command's own; when the guest could not run
it at all: 125 (setup or QEMU error), 124 (timeout), 130 (Ctrl-C), like
timeout(1) and docker run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from snabbpy.vm.hostrun import HostGraph, HostRunError
from snabbpy.vm.kernel import VMAssetsMissing
from snabbpy.vm.netspec import NetSpec, NetSpecError, parse_net, pci_address
from snabbpy.vm.runner import RunOptions, VMError, VMTimeout, run

EXIT_VM_ERROR = 125
EXIT_TIMEOUT = 124
EXIT_INTERRUPTED = 130
SETUP_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "setup-vm-lab.sh"


def _parse_nets(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[NetSpec]:
    try:
        return [parse_net(v) for v in values]
    except NetSpecError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from None


def _parse_env(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    env = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", ctx=ctx, param=param)
        env[key] = value
    return env


@click.group()
def vm() -> None:
    """Throwaway QEMU guests whose root is this host's filesystem (read-only)."""


# Options stop at the first word of COMMAND, so its own options need no `--`.
@vm.command(context_settings={"allow_interspersed_args": False})
@click.option("--memory", "memory_mib", type=click.IntRange(128), default=1024, show_default=True,
              help="Guest RAM in MiB.")
@click.option("--cpus", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--hugepages", type=click.IntRange(0), default=64, show_default=True,
              help="2 MiB hugepages to reserve in the guest (/dev/hugepages).")
@click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Kill the guest after this many seconds.")
@click.option("--accel", type=click.Choice(["auto", "kvm", "tcg"]), default="auto",
              show_default=True, help="auto probes KVM (with a time limit) and falls back to TCG.")
@click.option("--kvm", "accel", flag_value="kvm", help="Same as --accel kvm.")
@click.option("--no-kvm", "accel", flag_value="tcg", help="Same as --accel tcg.")
@click.option("--net", "nets", multiple=True, callback=_parse_nets, metavar="SPEC",
              help="Add a virtio-net-pci device (first at 0000:00:05.0); see docs/vm-lab.md.")
@click.option("--share", "shares", multiple=True, metavar="DIR",
              help="Mount host DIR read-write at the same path in the guest.")
@click.option("--env", "env", multiple=True, callback=_parse_env, metavar="NAME=VALUE",
              help="Set a variable for the command (PATH, PYTHONPATH... pass through).")
@click.option("--workdir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Directory to run the command in (default: the current one).")
@click.option("--host-run", "host_run", metavar="CONFIG.yaml", default=None,
              help="Run this snabbpy graph on the host while the guest runs (its output on "
                   "stderr); QEMU starts once it listens on the vhost-user sockets.")
@click.option("--verbose", "-v", is_flag=True, help="Show the whole console and timings.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run_cmd(command: tuple[str, ...], nets: list[NetSpec], verbose: bool, **kw: object) -> None:
    """Boot a guest, run COMMAND in it as root, exit with COMMAND's status."""
    host_run = kw.pop("host_run")
    if host_run is None:
        sys.exit(_run_guest(command, nets, verbose, kw))
    host = HostGraph(host_run)
    try:
        host.start(nets)
        status = _run_guest(command, nets, verbose, kw)
    except HostRunError as e:
        click.echo(f"snabbpy vm: {e}", err=True)
        status = EXIT_VM_ERROR
    finally:
        host_status = host.stop()
    if host_status not in (0, None) and status == 0:
        click.echo(f"snabbpy vm: host graph {host_run} exited with status {host_status}",
                   err=True)
        status = EXIT_VM_ERROR
    sys.exit(status)


def _run_guest(command: tuple[str, ...], nets: list[NetSpec], verbose: bool,
               kw: dict) -> int:
    """Runs the guest; returns the exit status `vm run` must have."""
    workdir = kw.pop("workdir")
    cwd = str(Path(workdir).resolve()) if workdir else None  # the guest sees the same paths
    opts = RunOptions(argv=command, nets=nets, verbose=verbose, cwd=cwd, **kw)
    if verbose:
        for i, _net in enumerate(nets):
            click.echo(f"# --net {i} at {pci_address(i)}", err=True)
    try:
        result = run(opts, out=_stdout, noise=lambda s: click.echo(s, nl=False, err=True))
    except VMTimeout as e:
        click.echo(f"snabbpy vm: {e}", err=True)
        return EXIT_TIMEOUT
    except (VMError, VMAssetsMissing, FileNotFoundError, ValueError) as e:
        click.echo(f"snabbpy vm: {e}", err=True)
        return EXIT_VM_ERROR
    except KeyboardInterrupt:
        click.echo("snabbpy vm: interrupted, guest killed", err=True)
        return EXIT_INTERRUPTED
    if verbose:
        boot = f"{result.boot_seconds:.1f} s" if result.boot_seconds is not None else "?"
        click.echo(f"# accel={result.accel} boot={boot} total={result.total_seconds:.1f} s "
                   f"status={result.status}", err=True)
    return result.status


run_cmd.name = "run"


def _stdout(text: str) -> None:
    click.echo(text, nl=False)
    sys.stdout.flush()


@vm.command()
def setup() -> None:
    """Install QEMU and busybox, extract Debian's kernel into the cache."""
    if not SETUP_SCRIPT.exists():
        raise click.ClickException(f"{SETUP_SCRIPT} not found (run from a source checkout)")
    sys.exit(subprocess.call(["sh", str(SETUP_SCRIPT)]))


if __name__ == "__main__":
    vm()
