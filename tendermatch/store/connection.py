"""The store's connection: opening a store file, transactions, locks, and the helpers
every part of the store shares (errors, timestamps, compression of raw documents)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import sqlite_utils
import zstandard

from ..errors import TendermatchError
from .schema import migrate

BUSY_TIMEOUT_MS = 30_000

class StoreError(TendermatchError, RuntimeError):
    """Raised when the store file cannot be opened, created or written (bad path,
    not a SQLite database, disk full); the message names the file."""


class StoreFullError(StoreError):
    """Raised when a write fails because the disk is full or the file may not grow (SQLite's
    SQLITE_FULL, or SQLITE_IOERR from a write, e.g. past a file-size limit). The transaction
    was rolled back, so the store holds nothing of it; more writes would fail the same way."""


def _casefold(text: Any) -> Any:
    return text.casefold() if isinstance(text, str) else text


def add_fold_function(conn: sqlite3.Connection) -> None:
    """``tm_fold(text)`` in SQL on ``conn``: Unicode case folding, for the console's searches
    (SQLite's LIKE and lower() fold ASCII only: "holbæk" must find "HOLBÆK KOMMUNE"). The
    store's console reads and the Datasette view register the same one."""
    conn.create_function("tm_fold", 1, _casefold, deterministic=True)


def _write_error(path: str, error: sqlite3.Error) -> StoreError:
    """The StoreError for a failed write: StoreFullError when the disk refused it."""
    code = (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF  # the primary code of an extended one
    if code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
        return StoreFullError(f"{path}: cannot write: the disk is full or the file may not grow ({error})")
    return StoreError(f"{path}: {error}")


def _read_only(path: Path) -> bool:
    """Whether the store file or its folder (where SQLite keeps its -wal and -shm files)
    cannot be written."""
    folder = path.parent if str(path.parent) else Path(".")
    return (path.exists() and not os.access(path, os.W_OK)) or (folder.exists() and not os.access(folder, os.W_OK))


def lock_path(store_path: str | Path, name: str) -> Path:
    """The file of the lock ``name`` (``worker``, ``sending``) of the store at ``store_path``:
    beside the store's real file, named after it with every symlink and relative part
    resolved, so that every spelling of one store (``./x.db``, an absolute path, a symlink
    to the file or to its folder) takes the same lock. (A hard link is another name for
    the file that SQLite itself cannot share safely: its -wal file goes by the name.)"""
    real = Path(os.path.realpath(store_path))
    return real.with_name(f"{real.name}.{name}.lock")


def _enable_wal(db: sqlite_utils.Database) -> None:
    """Switch to WAL. The switch does not wait for the busy timeout, so when another
    process holds the brand-new file (opening it at the same moment) try again briefly."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode = wal")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


_zstd = threading.local()


def compress(content: bytes) -> bytes:
    """How raw documents are kept: Zstandard level 1 (twice as fast as zlib's fastest
    level, and smaller: notices shrink about 5x)."""
    compressor = getattr(_zstd, "compressor", None)
    if compressor is None:  # one per thread: a compressor is not thread-safe
        compressor = _zstd.compressor = zstandard.ZstdCompressor(level=1)
    return compressor.compress(content)


def decompress(kept: bytes) -> bytes:
    """A kept document's bytes."""
    return zstandard.ZstdDecompressor().decompress(kept)


def utc_now() -> str:
    """Now as ISO 8601 UTC with seconds, the store's timestamp format."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def as_json(value: Any) -> str:
    """How the store writes a JSON column: UTF-8 text, keys sorted."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)



class Connection:
    """A store file opened in WAL mode; the parts of ``Store`` build on it."""

    def __init__(self, db: sqlite_utils.Database, path: str):
        self.db = db
        self.path = path
        self._depth = 0  # 1 inside transaction(): nested ones are savepoints
        self._savepoints = 0  # savepoints open inside it

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> Self:
        """Open (creating if needed) the store at ``path`` and bring its schema up to date."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            db = sqlite_utils.Database(conn)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _enable_wal(db)
            db.execute("PRAGMA synchronous = NORMAL")
            # Checkpoint every ~16 MB of WAL instead of 4 MB: bulk ingests write each page once less often.
            db.execute("PRAGMA wal_autocheckpoint = 4000")
            db.execute("PRAGMA foreign_keys = ON")
            migrate(db)
        except (sqlite3.Error, OSError) as error:
            if _read_only(path):
                raise StoreError(f"{path}: the store cannot be written (a read-only file, folder or file system):"
                                 f" tendermatch writes to it and beside it ({error})") from None
            raise StoreError(f"{path}: cannot open the store: {error}") from None
        return cls(db, str(path))

    @classmethod
    def memory(cls) -> Self:
        """A fresh in-memory store (tests)."""
        db = sqlite_utils.Database(memory=True)
        db.execute("PRAGMA foreign_keys = ON")
        migrate(db)
        return cls(db, ":memory:")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside happen together or not at all (nested: a savepoint).

        The outermost one begins IMMEDIATE: it takes the write lock first, waiting the busy
        timeout for another process's writes. A deferred BEGIN that reads first and then
        writes fails at once with "database is locked" when another process wrote meanwhile
        (SQLite cannot wait on a stale snapshot)."""
        conn = self.db.conn
        try:
            if self._depth:
                self._savepoints += 1
                try:
                    with self.db.atomic():
                        yield
                finally:
                    self._savepoints -= 1
                return
            if conn.in_transaction:
                # Python's sqlite3 opened one for a single statement (a write outside
                # transaction()): that write was meant to stand on its own.
                conn.commit()
            conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            finally:
                self._depth = 0
            try:
                self.sync_search()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
        except sqlite3.Error as error:
            raise _write_error(self.path, error) from error

    def outermost(self) -> bool:
        """True inside the outermost ``transaction()`` with no savepoint open: where
        ``let_writers_in`` may commit."""
        return self._depth == 1 and not self._savepoints and self.path != ":memory:"

    def let_writers_in(self, *, pause: float = 0.02) -> bool:
        """Inside the outermost ``transaction()`` with no savepoint open: commit what is
        written so far, pause ``pause`` seconds (SQLite's busy handler polls, so a waiting
        writer needs a gap) and begin again. A long job calls this every half second so no
        other writer waits longer. Returns False, doing nothing, anywhere else."""
        if not self.outermost():
            return False
        conn = self.db.conn
        try:
            self.sync_search()
            conn.execute("COMMIT")
            time.sleep(pause)
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise _write_error(self.path, error) from error
        return True

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold the lock ``name`` of this store while the block runs, waiting for another
        process that holds it: for work that must never run twice at once, like sending the
        pending digests (two senders would both send each one). A ``flock`` on the file
        ``lock_path`` names, so the kernel releases it however the holder ends."""
        if self.path == ":memory:":
            yield
            return
        import fcntl

        with open(lock_path(self.path, name), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def sync_search(self) -> None:
        """Bring the full-text index (notices_fts) up to the notices changed since the last
        sync; ``transaction`` runs it before every commit. The queue is committed with the
        notices, so an index left behind by a crash catches up at the next sync."""
        conn = self.db.conn
        if conn.execute("SELECT 1 FROM _search_queue LIMIT 1").fetchone() is None:
            return
        conn.execute("INSERT INTO notices_fts (notices_fts, rowid, title, description)"
                     " SELECT 'delete', notice_rowid, old_title, old_description FROM _search_queue WHERE indexed")
        conn.execute("INSERT INTO notices_fts (rowid, title, description) SELECT n.rowid, n.title, n.description"
                     " FROM _search_queue AS q JOIN notices AS n ON n.rowid = q.notice_rowid")
        conn.execute("DELETE FROM _search_queue")

