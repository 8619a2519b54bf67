"""`python -m tendermatch` is the `tendermatch` command."""

from .worker.cli import main

main()
