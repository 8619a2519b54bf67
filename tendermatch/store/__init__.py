"""The SQLite store (sqlite-utils): schema, migrations and all SQL. Depends on nothing of ours."""

from .store import (
    BUSY_TIMEOUT_MS,
    RawDocument,
    Store,
    StoreError,
    StoreFullError,
    compress,
    decompress,
    lock_path,
    utc_now,
)

__all__ = ["BUSY_TIMEOUT_MS", "RawDocument", "Store", "StoreError", "StoreFullError", "compress", "decompress",
           "lock_path", "utc_now"]
