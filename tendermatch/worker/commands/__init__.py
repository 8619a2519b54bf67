"""The `tendermatch` commands, a module per group; importing one registers its commands on
``worker.cli.cli``."""
