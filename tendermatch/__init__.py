"""tendermatch: tells social-economy enterprises about the public tenders they could win.

sources --crawler--> store --matcher--> match log --notifier--> weekly digests;
the worker (CLI + scheduler) reads config and wires the stages.
"""

__version__ = "0.1.0"
