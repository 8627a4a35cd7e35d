"""`python -m snabbpy` is the `snabbpy` command."""

from snabbpy.cli import main

main()
