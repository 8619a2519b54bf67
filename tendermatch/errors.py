"""The one base class of every error tendermatch raises on purpose.

Each stage keeps its own error classes beside the code that raises them (``ParseError`` in
the parsers, ``StoreError`` in the store, ``DeliveryFailure`` in the notifier, ...); they all
derive from ``TendermatchError`` (and from the built-in class callers already catch, such as
``ValueError``). This module holds no logic, so every stage may import it without depending
on another stage.
"""

from __future__ import annotations


class TendermatchError(Exception):
    """Raised for bad input (a config key, a profile, a notice document, a local file, a
    token) or a resource that failed (the store's file, an SMTP server, the worker's lock).
    The message is one line naming the file, source, key or host:port; the CLI prints it
    as it is, without a traceback. Any other exception that reaches the CLI is a bug."""
