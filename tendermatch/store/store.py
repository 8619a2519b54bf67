"""The SQLite store: the only code in tendermatch that writes SQL.

Stages talk to each other only through this package. A store is a file opened in WAL mode
with a busy timeout, so a crawl, a match and a reader can use it at the same time. ``Store``
is one object made of a part per concern, each in its own module:

* ``connection``: opening, transactions, locks, errors and shared helpers;
* ``raw``: fetched documents; ``notices``: notices, keys, sources, versions;
* ``runs``: job runs and the worker's state; ``matchlog``: the match log;
* ``deliveries``: profiles, unsubscribes and digest deliveries;
* ``accounts``: the console's users, sessions and access log;
* ``console``: the staff console's reads (lists, counts, one notice, one enterprise).
"""

from __future__ import annotations

from .accounts import Accounts
from .console import ConsoleReads
from .deliveries import Deliveries
from .matchlog import MatchLog
from .notices import Notices
from .raw import RawDocuments
from .runs import Runs


class Store(RawDocuments, Notices, Runs, MatchLog, Deliveries, Accounts, ConsoleReads):
    """Open with ``Store.open(path)`` (or ``Store.memory()`` in tests)."""
