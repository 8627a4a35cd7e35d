"""Spawned snabbpy processes run the installed snabbpy, not a checkout that
happens to be in their current directory."""

import subprocess

from snabbpy.core.spawn import snabbpy_command


def shadowing_checkout(tmp_path):
    """A directory holding an unbuilt, broken ``snabbpy`` package."""
    (tmp_path / "snabbpy").mkdir()
    (tmp_path / "snabbpy" / "__init__.py").write_text("raise ImportError('the checkout')\n")
    return tmp_path


def test_a_checkout_in_the_current_directory_does_not_shadow_snabbpy(tmp_path):
    cwd = shadowing_checkout(tmp_path)
    done = subprocess.run(snabbpy_command("--version"), cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0 and "version" in done.stdout, done.stderr


def test_without_the_helper_it_would(tmp_path):
    cwd = shadowing_checkout(tmp_path)
    argv = [a for a in snabbpy_command("--version") if a != "-P"]
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    assert done.returncode != 0 and "the checkout" in done.stderr
