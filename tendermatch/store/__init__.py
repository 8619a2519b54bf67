"""The SQLite store (sqlite-utils): schema, migrations and all SQL. Depends on nothing of ours
but the shared error base (``tendermatch.errors``)."""

from .accounts import ROLES, AccountError
from .connection import (
    BUSY_TIMEOUT_MS,
    StoreError,
    StoreFullError,
    compress,
    decompress,
    lock_path,
    utc_now,
)
from .console import NoticeFilter
from .raw import RawDocument
from .records import Buyer, Lot, MatchFacts, Money, NoticeRecord
from .store import Store

__all__ = ["BUSY_TIMEOUT_MS", "ROLES", "AccountError", "Buyer", "Lot", "MatchFacts", "Money", "NoticeFilter",
           "NoticeRecord", "RawDocument", "Store", "StoreError", "StoreFullError", "compress", "decompress",
           "lock_path", "utc_now"]
