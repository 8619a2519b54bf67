"""The SQLite store: the only code in tendermatch that writes SQL.

Stages talk to each other only through this module. A store is a file opened in WAL mode
with a busy timeout, so a crawl, a match and a reader can use it at the same time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
import zstandard

from ..errors import TendermatchError
from .blocking import block_rows, days_between, title_words
from .schema import migrate

BUSY_TIMEOUT_MS = 30_000
# How many of a new notice's title words (the rarest in its deadline window) find its
# de-duplication candidates: two, so that one word spelled differently loses nothing.
FUZZY_BLOCK_WORDS = 2


class StoreError(TendermatchError, RuntimeError):
    """Raised when the store file cannot be opened, created or written (bad path,
    not a SQLite database, disk full); the message names the file."""


class StoreFullError(StoreError):
    """Raised when a write fails because the disk is full or the file may not grow (SQLite's
    SQLITE_FULL, or SQLITE_IOERR from a write, e.g. past a file-size limit). The transaction
    was rolled back, so the store holds nothing of it; more writes would fail the same way."""


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


@dataclass
class RawDocument:
    """A fetched document as kept in the store."""

    id: int
    source: str
    url: str
    format: str | None
    fetched_at: str
    content: bytes
    parent_id: int | None = None


_NOTICE_COLUMNS = ("kind", "stage", "status", "title", "description", "procedure_id", "deadline", "published",
                   "valid_until")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class Store:
    """Open with ``Store.open(path)`` (or ``Store.memory()`` in tests)."""

    def __init__(self, db: sqlite_utils.Database, path: str):
        self.db = db
        self.path = path
        self._depth = 0  # 1 inside transaction(): nested ones are savepoints
        self._savepoints = 0  # savepoints open inside it

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> Store:
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
    def memory(cls) -> Store:
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

    # -- raw documents -------------------------------------------------------------------

    def save_raw(
        self,
        *,
        source: str,
        url: str,
        sha256: str,
        compressed: bytes,
        size: int,
        fetched_at: str,
        format: str | None,
        parent_id: int | None = None,
        run_id: int | None = None,
        status: str = "stored",
        error: str | None = None,
    ) -> tuple[int, bool]:
        """Keep a fetched document (``compress``-ed by the caller, with its sha256 and
        size); return (id, is_new). The same bytes from the same source (and, for a detail
        page, the same listing page) are kept once."""
        row = self.db.execute(
            "SELECT id FROM raw_documents WHERE source = ? AND sha256 = ? AND coalesce(parent_id, 0) = ?",
            [source, sha256, parent_id or 0],
        ).fetchone()
        if row:
            return row[0], False
        cursor = self.db.execute(
            "INSERT INTO raw_documents (sha256, source, url, parent_id, format, fetched_at, size, content, status,"
            " error, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [sha256, source, url, parent_id, format, fetched_at, size, compressed, status, error, run_id],
        )
        return int(cursor.lastrowid or 0), True

    def raw_status(self, raw_id: int) -> str | None:
        row = self.db.execute("SELECT status FROM raw_documents WHERE id = ?", [raw_id]).fetchone()
        return row[0] if row else None

    def mark_raw(self, raw_id: int, status: str, error: str | None = None, *, format: str | None = None) -> None:
        self.db.execute(
            "UPDATE raw_documents SET status = ?, error = ?, format = coalesce(?, format) WHERE id = ?",
            [status, error, format, raw_id],
        )

    def known_urls(self, source: str) -> set[str]:
        """URLs of documents from ``source`` already kept and usable (a crawl never fetches
        them again; a rejected one, e.g. cut off in transit, or one whose notices were not
        all stored, 'storing' when a crash cut it off, is fetched again)."""
        return {row[0] for row in self.db.execute(
            "SELECT url FROM raw_documents WHERE source = ? AND status NOT IN ('rejected', 'storing')", [source])}

    def iter_raw(self, *, source: str | None = None, top_level: bool = True) -> Iterator[RawDocument]:
        """Kept documents in the order they were fetched; top-level ones only by default
        (detail pages come with their listing page through ``raw_children``)."""
        sql = "SELECT id, source, url, format, fetched_at, content, parent_id FROM raw_documents WHERE 1 = 1"
        params: list[Any] = []
        if source:
            sql += " AND source = ?"
            params.append(source)
        if top_level:
            sql += " AND parent_id IS NULL"
        sql += " ORDER BY fetched_at, id"
        for row in self.db.execute(sql, params):
            yield RawDocument(row[0], row[1], row[2], row[3], row[4], decompress(row[5]), row[6])

    def raw_children(self, parent_id: int) -> dict[str, bytes]:
        """The detail pages kept with a listing page: {url: content}, the newest of each URL."""
        rows = self.db.execute("SELECT url, content FROM raw_documents WHERE parent_id = ? ORDER BY id", [parent_id])
        return {url: decompress(content) for url, content in rows}

    # -- notices -------------------------------------------------------------------------

    def notice_id_for_keys(self, keys: list[str]) -> str | None:
        """The notice any of ``keys`` leads to."""
        if not keys:
            return None
        found = dict(self.db.conn.execute(
            f"SELECT key, notice_id FROM notice_keys WHERE key IN ({', '.join('?' * len(keys))})", keys).fetchall())
        return next((found[key] for key in keys if key in found), None)

    def notice_ids_for_procedure(self, procedure_id: str) -> list[tuple[str, str]]:
        """(id, stage) of every notice of a procedure."""
        return [tuple(row) for row in self.db.execute(
            "SELECT id, stage FROM notices WHERE procedure_id = ? ORDER BY id", [procedure_id])]

    def fuzzy_candidates(self, *, kind: str, deadline_from: str, deadline_to: str, other_than_source: str,
                         titles: Iterable[str | None], words: int = FUZZY_BLOCK_WORDS) -> list[dict[str, Any]]:
        """Notices of ``kind`` whose deadline falls in [deadline_from, deadline_to) (ISO
        strings compared as text), that ``other_than_source`` has not delivered (one source
        never lists one notice twice) and whose titles share with ``titles`` one of the
        ``words`` rarest of their words in that window: the candidates for cross-source
        de-duplication, in deadline order. Found through ``fuzzy_blocks`` (see
        store/blocking.py), so the work grows with the few notices that share a rare
        word, not with every notice of the window. Each candidate has only what the
        comparison needs: id, title, titles (da, en) and buyer (name)."""
        days = days_between(deadline_from, deadline_to)
        mine = sorted(title_words(titles))
        if not days or not mine:
            return []
        day_marks, word_marks = ", ".join("?" * len(days)), ", ".join("?" * len(mine))
        # The rarest words first: a common word ("rengøring") would bring half the window.
        counts = self.db.execute(
            f"SELECT word, count(*) AS n FROM fuzzy_blocks WHERE kind = ? AND day IN ({day_marks})"
            f" AND word IN ({word_marks}) GROUP BY word ORDER BY n, word LIMIT ?",
            [kind, *days, *mine, words]).fetchall()
        if not counts:
            return []
        chosen = [word for word, _ in counts]
        rows = self.db.execute(
            "SELECT n.id, n.title, n.record ->> '$.titles.da', n.record ->> '$.titles.en', n.buyer_name"
            " FROM notices AS n WHERE n.id IN (SELECT notice_id FROM fuzzy_blocks WHERE kind = ?"
            f" AND day IN ({day_marks}) AND word IN ({', '.join('?' * len(chosen))}))"
            " AND n.kind = ? AND n.deadline >= ? AND n.deadline < ? AND NOT EXISTS"
            " (SELECT 1 FROM notice_sources WHERE notice_id = n.id AND source = ?) ORDER BY n.deadline, n.rowid",
            [kind, *days, *chosen, kind, deadline_from, deadline_to, other_than_source])
        return [{"id": notice_id, "title": title, "titles": {lang: text for lang, text in (("da", da), ("en", en))
                                                            if text},
                 "buyer": {"name": buyer} if buyer else None}
                for notice_id, title, da, en, buyer in rows]

    def get_notice(self, notice_id: str) -> dict[str, Any] | None:
        """The schema record of a notice, with its sources."""
        row = self.db.execute("SELECT record FROM notices WHERE id = ?", [notice_id]).fetchone()
        if not row:
            return None
        record = json.loads(row[0])
        record["sources"] = self._sources(notice_id)
        return record

    def notice_meta(self, notice_id: str) -> dict[str, Any]:
        """What the pipeline keeps about a notice besides its record: format, last_change, change_of."""
        row = self.db.execute("SELECT format, last_change, change_of FROM notices WHERE id = ?", [notice_id]).fetchone()
        return dict(zip(("format", "last_change", "change_of"), row, strict=False)) if row else {}

    def procedure_candidates(self, procedure_id: str, *, stage: str, other_than_source: str) -> list[dict[str, Any]]:
        """Notices of one procedure and stage that ``other_than_source`` has not delivered."""
        rows = self.db.execute(
            "SELECT record FROM notices WHERE procedure_id = ? AND stage = ? AND NOT EXISTS"
            " (SELECT 1 FROM notice_sources WHERE notice_id = notices.id AND source = ?)",
            [procedure_id, stage, other_than_source])
        return [json.loads(row[0]) for row in rows]

    def notice_version(self, notice_id: str) -> int:
        row = self.db.execute("SELECT version FROM notices WHERE id = ?", [notice_id]).fetchone()
        return row[0] if row else 0

    def _sources(self, notice_id: str) -> list[str]:
        return [row[0] for row in self.db.execute(
            "SELECT source FROM notice_sources WHERE notice_id = ? ORDER BY first_seen, rowid", [notice_id])]

    def put_notice(
        self,
        record: dict[str, Any],
        *,
        keys: list[str],
        source: str,
        source_url: str | None,
        raw_id: int | None,
        change: str,
        fields: list[str],
        format: str | None = None,
        last_change: str | None = None,
        change_of: str | None = None,
        at: str | None = None,
    ) -> None:
        """Insert or replace a notice with its lots, keys and source, and log the version.

        ``record`` is the full schema record (``sources`` is ignored: it comes from
        ``notice_sources``). ``change`` says why: new, updated, changed, cancelled, merged.
        """
        at = at or utc_now()
        notice_id = record["id"]
        stored = {key: value for key, value in record.items() if key != "sources"}
        stored["lots"] = _unique_lots(record["lots"])
        record_json = json.dumps(stored, ensure_ascii=False)
        values = {"id": notice_id, **{column: record.get(column) for column in _NOTICE_COLUMNS}, "format": format,
                  "last_change": last_change, "change_of": change_of,
                  "buyer_name": (record.get("buyer") or {}).get("name"), "first_seen": at, "updated_at": at,
                  "record": record_json}
        names = list(values)
        updates = ", ".join(f"{n} = excluded.{n}" for n in names if n not in ("id", "first_seen"))
        conn = self.db.conn
        version = conn.execute(
            f"INSERT INTO notices ({', '.join(names)}, version) VALUES ({', '.join(':' + n for n in names)}, 1)"
            f" ON CONFLICT (id) DO UPDATE SET {updates}, version = notices.version + 1 RETURNING version",
            values,
        ).fetchone()[0]
        if version > 1:
            conn.execute("DELETE FROM lots WHERE notice_id = ?", [notice_id])
            conn.execute("DELETE FROM fuzzy_blocks WHERE notice_id = ?", [notice_id])
        titles = record.get("titles") or {}
        conn.executemany("INSERT OR IGNORE INTO fuzzy_blocks (kind, day, word, notice_id) VALUES (?, ?, ?, ?)",
                         block_rows(notice_id, record.get("kind"), record.get("deadline"),
                                    (record.get("title"), titles.get("da"), titles.get("en"))))
        # The lots come straight out of the record's JSON: one statement, no re-encoding.
        conn.execute(
            "INSERT INTO lots (notice_id, lot_id, title, description, cpv, nuts, value_amount, value_currency,"
            " reserved, social) SELECT ?, value ->> '$.lot_id', value ->> '$.title', value ->> '$.description',"
            " value -> '$.cpv', coalesce(value -> '$.nuts', '[]'), value ->> '$.value.amount',"
            " value ->> '$.value.currency', value -> '$.reserved', value -> '$.social'"
            " FROM json_each(?, '$.lots')",
            [notice_id, record_json],
        )
        self.add_keys(notice_id, keys)
        self.add_source(notice_id, source, source_url, at=at)
        self.db.execute(
            "INSERT INTO notice_versions (notice_id, version, at, source, raw_id, change, fields)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [notice_id, version, at, source, raw_id, change, json.dumps(fields)],
        )
        if not self._depth:  # a write outside transaction(): index it now
            with self.transaction():
                pass  # (sync_search runs before the commit)

    def add_keys(self, notice_id: str, keys: list[str]) -> None:
        """Point ``keys`` at a notice (a key already pointing elsewhere keeps its notice)."""
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO notice_keys (key, notice_id) VALUES (?, ?)", [(key, notice_id) for key in keys]
        )

    def add_source(self, notice_id: str, source: str, url: str | None, *, at: str | None = None) -> None:
        at = at or utc_now()
        self.db.execute(
            "INSERT INTO notice_sources (notice_id, source, url, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (notice_id, source) DO UPDATE SET last_seen = excluded.last_seen,"
            " url = coalesce(notice_sources.url, excluded.url)",
            [notice_id, source, url, at, at],
        )

    def set_status(self, notice_ids: list[str], status: str, *, source: str, raw_id: int | None) -> None:
        """Set the status column and the record's status together, with a version row."""
        at = utc_now()
        for notice_id in notice_ids:
            version = self.db.conn.execute(
                "UPDATE notices SET status = ?, record = json_set(record, '$.status', ?), version = version + 1,"
                " updated_at = ? WHERE id = ? RETURNING version",
                [status, status, at, notice_id],
            ).fetchone()[0]
            self.db.execute(
                "INSERT INTO notice_versions (notice_id, version, at, source, raw_id, change, fields)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", [notice_id, version, at, source, raw_id, status, '["status"]'])

    def notices(
        self,
        *,
        since: str | None = None,
        notice_id: str | None = None,
        kind: str | None = None,
        open_on: str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Stored notices as schema records (with ``sources``), newest published first.
        ``since`` keeps notices published on or after that date. ``open_on`` (an ISO date)
        keeps the active ones whose deadline (an agreement's: its end date) is not before that
        day or unknown, so a matcher need not read a year of closed notices."""
        sql = "SELECT id, record FROM notices WHERE 1 = 1"
        params: list[Any] = []
        if open_on:
            sql += (" AND status = 'active' AND coalesce(nullif(substr(CASE WHEN kind = 'agreement' THEN valid_until"
                    " ELSE deadline END, 1, 10), '') >= ?, 1)")
            params.append(open_on)
        if notice_id:
            sql += " AND id = ?"
            params.append(notice_id)
        if since:  # by publication date; a notice without one counts from when it was first seen
            sql += " AND coalesce(published, substr(first_seen, 1, 10)) >= ?"
            params.append(since)
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        sql += " ORDER BY published DESC, id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        sources: dict[str, list[str]] = {}
        for nid, source in self.db.execute(
            "SELECT notice_id, source FROM notice_sources ORDER BY first_seen, rowid"
        ):
            sources.setdefault(nid, []).append(source)
        for nid, record in self.db.execute(sql, params).fetchall():
            item = json.loads(record)
            item["sources"] = sources.get(nid, [])
            yield item

    def notice_history(self, notice_id: str) -> list[dict[str, Any]]:
        return list(self.db.query(
            "SELECT version, at, source, raw_id, change, fields FROM notice_versions WHERE notice_id = ?"
            " ORDER BY version", [notice_id]))

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables."""
        return {table: self.db.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0]
                for table in ("notices", "lots", "raw_documents", "runs", "rejections", "matches", "deliveries")}

    def clear_notices(self) -> None:
        """Forget every parsed notice (raw documents stay): the first step of `reparse`."""
        with self.transaction():
            for table in ("lots", "notice_keys", "notice_sources", "notice_versions", "fuzzy_blocks", "notices"):
                self.db.execute(f"DELETE FROM [{table}]")
            # The whole index goes at once, rather than row by row at the commit.
            self.db.execute("INSERT INTO notices_fts (notices_fts) VALUES ('delete-all')")
            self.db.execute("DELETE FROM _search_queue")
            self.db.execute("UPDATE raw_documents SET status = 'stored', error = NULL")

    # -- runs ----------------------------------------------------------------------------

    def start_run(self, job: str, *, source: str | None = None) -> int:
        """Record that ``job`` (crawl, ingest, reparse, match, digest) started, by this process."""
        cursor = self.db.execute(
            "INSERT INTO runs (job, source, started, outcome, pid) VALUES (?, ?, ?, 'running', ?)",
            [job, source, utc_now(), os.getpid()],
        )
        return int(cursor.lastrowid or 0)

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM runs WHERE id = ?", [run_id]))
        return _parsed_run(rows[0]) if rows else None

    def finish_run(self, run_id: int, *, outcome: str, stats: dict[str, Any], error: str | None = None) -> None:
        """Record a run's end; a StoreError (not a bare sqlite3 error) when it cannot be
        written, e.g. on a full disk, so the caller can say so in one line."""
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET finished = ?, outcome = ?, stats = ?, error = ? WHERE id = ?",
                [utc_now(), outcome, _json(stats), error, run_id],
            )

    def add_rejection(self, *, run_id: int | None, source: str, url: str, reason: str) -> None:
        self.db.execute(
            "INSERT INTO rejections (run_id, source, url, reason, at) VALUES (?, ?, ?, ?, ?)",
            [run_id, source, url, reason, utc_now()],
        )

    def last_successful_run(self, source: str) -> dict[str, Any] | None:
        """The newest crawl of ``source`` in which every fetch succeeded (documents it
        rejected as bad do not count: fetching them again would not help)."""
        rows = list(self.db.query(
            "SELECT * FROM runs WHERE source = ? AND job = 'crawl' AND outcome = 'ok'"
            " ORDER BY started DESC LIMIT 1", [source]))
        return rows[0] if rows else None

    def last_run(self, source: str) -> dict[str, Any] | None:
        rows = list(self.db.query(
            "SELECT * FROM runs WHERE source = ? ORDER BY started DESC, id DESC LIMIT 1", [source]))
        return rows[0] if rows else None

    def last_completed_run(self, job: str, *, source: str | None = None) -> dict[str, Any] | None:
        """The newest run of ``job`` (of ``source``, for crawls) that ran to an end: ok,
        partial or failed, not one still running or interrupted."""
        rows = list(self.db.query(
            "SELECT * FROM runs WHERE job = ? AND source IS ? AND outcome NOT IN ('running', 'interrupted')"
            " ORDER BY id DESC LIMIT 1", [job, source]))
        return _parsed_run(rows[0]) if rows else None

    def crawls_with_news_since_match(self) -> int:
        """Crawls that stored new or changed notices after the newest completed match began."""
        return self.db.execute(
            "SELECT count(*) FROM runs WHERE job = 'crawl' AND outcome IN ('ok', 'partial')"
            " AND coalesce(json_extract(stats, '$.new'), 0) + coalesce(json_extract(stats, '$.updated'), 0) > 0"
            " AND id > coalesce((SELECT max(id) FROM runs WHERE job = 'match' AND outcome = 'ok'), 0)").fetchone()[0]

    def interrupt_orphaned_runs(self, *, alive: Callable[[int], bool]) -> list[int]:
        """Mark 'interrupted' every run still 'running' whose process (``alive(pid)`` is
        False) is gone: it was killed before it could record its end. Returns their ids."""
        orphans = [row["id"] for row in self.db.query("SELECT id, pid FROM runs WHERE outcome = 'running'"
                                                      " AND pid IS NOT NULL") if not alive(row["pid"])]
        for run_id in orphans:
            self.db.execute("UPDATE runs SET outcome = 'interrupted', finished = ?, error = coalesce(error,"
                            " 'the process running it ended before it finished (killed?)') WHERE id = ?",
                            [utc_now(), run_id])
        return orphans

    def source_counts(self) -> dict[str, int]:
        """How many notices each source delivered."""
        return {row[0]: row[1] for row in self.db.execute(
            "SELECT source, count(*) FROM notice_sources GROUP BY source")}

    def runs(self, *, limit: int = 50, job: str | None = None, source: str | None = None) -> list[dict[str, Any]]:
        """The newest runs first, optionally of one job and one source."""
        where, params = [], []
        if job:
            where.append("job = ?")
            params.append(job)
        if source:
            where.append("source = ?")
            params.append(source)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
        return list(self.db.query(sql, [*params, limit]))

    # -- the worker ----------------------------------------------------------------------

    def publish_worker(self, **state: Any) -> None:
        """Update the running worker's row (pid, host, started, config, config_loaded,
        reload_error, heartbeat, stopped)."""
        self.db.table("worker_state").upsert({"id": 1, **state}, pk="id")

    def worker_state(self) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM worker_state WHERE id = 1"))
        return rows[0] if rows else None

    def publish_jobs(self, jobs: list[dict[str, Any]]) -> None:
        """Make ``jobs`` (id, kind, source, schedule, timezone, next_run) the worker's job table."""
        with self.transaction():
            self.db.execute("DELETE FROM worker_jobs")
            now = utc_now()
            for job in jobs:
                self.db.table("worker_jobs").insert({**job, "updated_at": now}, pk="id")

    def worker_jobs(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM worker_jobs ORDER BY id"))

    def size_bytes(self) -> int:
        """The store's size on disk: the database file and its write-ahead log."""
        if self.path == ":memory:":
            return 0
        return sum(Path(self.path + suffix).stat().st_size for suffix in ("", "-wal")
                   if Path(self.path + suffix).exists())

    def rejections(self, run_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT url, reason FROM rejections WHERE run_id = ? ORDER BY id", [run_id]))

    # -- match log -----------------------------------------------------------------------

    def replace_matches(self, *, profile_ids: list[str], rows: list[dict[str, Any]],
                        run_id: int | None = None) -> int:
        """Make ``rows`` the match log of these profiles: their old rows go, in the same
        transaction, so a re-run never duplicates. Rows of other profiles stay. ``reasons``
        and ``facts`` may be JSON text or Python objects. Returns the rows written."""
        at = utc_now()
        with self.transaction():
            # A temporary table, not "IN (?, ?, ...)": a run may hold more profiles than
            # SQLite allows parameters in one statement.
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS _match_profiles (id TEXT PRIMARY KEY)")
            self.db.execute("DELETE FROM _match_profiles")
            self.db.conn.executemany("INSERT OR IGNORE INTO _match_profiles (id) VALUES (?)",
                                     ((profile_id,) for profile_id in profile_ids))
            self.db.execute("DELETE FROM matches WHERE profile_id IN (SELECT id FROM _match_profiles)")
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO matches (profile_id, notice_id, lot_id, score, rank, reasons, facts, kind,"
                " deadline, expires, matched_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (row["profile_id"], row["notice_id"], row["lot_id"], row["score"], row["rank"],
                     row["reasons"] if isinstance(row["reasons"], str) else _json(row["reasons"]),
                     row.get("facts") if isinstance(row.get("facts"), str) else _json(row.get("facts") or {}),
                     row.get("kind"), row.get("deadline"), row.get("expires"), row.get("matched_at") or at, run_id)
                    for row in rows
                ),
            )
        return len(rows)

    def match_log(self, *, profile_id: str | None = None, notice_id: str | None = None,
                  since: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Match-log rows, each profile's best first; ``since`` keeps rows matched on or
        after that date. ``reasons`` and ``facts`` come back parsed."""
        sql = "SELECT * FROM matches WHERE 1 = 1"
        params: list[Any] = []
        if profile_id:
            sql += " AND profile_id = ?"
            params.append(profile_id)
        if notice_id:
            sql += " AND notice_id = ?"
            params.append(notice_id)
        if since:
            sql += " AND matched_at >= ?"
            params.append(since)
        sql += " ORDER BY profile_id, rank, notice_id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_parsed_match(row) for row in self.db.query(sql, params)]

    # -- digests -------------------------------------------------------------------------

    _TOLD = ("SELECT 1 FROM delivery_items AS told JOIN deliveries AS d ON d.id = told.delivery_id"
             " WHERE told.profile_id = matches.profile_id AND told.notice_id = matches.notice_id"
             " AND d.state IN ('pending', 'sent')")

    def untold_matches(self, profile_id: str) -> list[dict[str, Any]]:
        """The profile's match-log rows whose notice no digest of the profile has told (a
        pending digest counts: it will be sent), best rank first; reasons and facts parsed."""
        return [_parsed_match(row) for row in self.db.query(
            f"SELECT * FROM matches WHERE profile_id = ? AND NOT EXISTS ({self._TOLD}) ORDER BY rank, notice_id",
            [profile_id])]

    def told_changes(self, profile_id: str) -> list[dict[str, Any]]:
        """Notices a digest of the profile told whose deadline moved or which were cancelled
        since they were last told: {notice_id, told_deadline, told_status, deadline, status}."""
        return list(self.db.query(
            "WITH last AS (SELECT told.notice_id, told.deadline, told.status,"
            " row_number() OVER (PARTITION BY told.notice_id ORDER BY told.delivery_id DESC) AS newest"
            " FROM delivery_items AS told JOIN deliveries AS d ON d.id = told.delivery_id"
            " WHERE told.profile_id = ? AND d.state IN ('pending', 'sent'))"
            " SELECT last.notice_id, last.deadline AS told_deadline, last.status AS told_status,"
            " n.deadline, n.status FROM last JOIN notices AS n ON n.id = last.notice_id"
            " WHERE last.newest = 1 AND ((n.status = 'cancelled' AND coalesce(last.status, '') != 'cancelled')"
            " OR (n.deadline IS NOT NULL AND n.deadline IS NOT coalesce(last.deadline, n.deadline)))"
            " ORDER BY last.notice_id", [profile_id]))

    def notice_records(self, notice_ids: list[str]) -> dict[str, dict[str, Any]]:
        """{id: record} for these notices, each record with ``format`` (the richest format
        seen for it) added."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(notice_ids), 500):  # under SQLite's parameter limit
            chunk = notice_ids[start:start + 500]
            for notice_id, notice_format, record in self.db.execute(
                    f"SELECT id, format, record FROM notices WHERE id IN ({', '.join('?' * len(chunk))})", chunk):
                found[notice_id] = {**json.loads(record), "format": notice_format}
        return found

    def save_profiles(self, profiles: list[dict[str, Any]], *, only: bool = False) -> None:
        """Keep the enterprises' profiles as the matcher saw them (for the web view).
        ``only`` False: these are all the profiles, and rows of others are removed."""
        at = utc_now()
        columns = ("id", "name", "emails", "language", "description", "keywords", "cpv", "regions", "max_value",
                   "reserved_eligible")
        rows = [{column: (_json(profile.get(column)) if isinstance(profile.get(column), (list, tuple, dict))
                          else profile.get(column)) for column in columns} | {"updated_at": at}
                for profile in profiles]
        with self.transaction():
            if not only:
                self.db.execute("DELETE FROM profiles")
            self.db.table("profiles").upsert_all(rows, pk="id")

    def profile(self, profile_id: str) -> dict[str, Any] | None:
        """A profile as the last match saw it (``save_profiles``), or None."""
        rows = list(self.db.query("SELECT * FROM profiles WHERE id = ?", [profile_id]))
        return rows[0] if rows else None

    def is_unsubscribed(self, profile_id: str, email: str) -> bool:
        return self.db.execute("SELECT 1 FROM unsubscribes WHERE profile_id = ? AND email = ?",
                               [profile_id, email.lower()]).fetchone() is not None

    def unsubscribed(self) -> set[tuple[str, str]]:
        """(profile_id, lower-cased e-mail) of every address that unsubscribed."""
        return {(row[0], row[1]) for row in self.db.execute("SELECT profile_id, email FROM unsubscribes")}

    def unsubscribe(self, profile_id: str, email: str, *, via: str) -> bool:
        """Stop digests of a profile to an address; False if it had already unsubscribed."""
        cursor = self.db.execute("INSERT OR IGNORE INTO unsubscribes (profile_id, email, at, via) VALUES (?, ?, ?, ?)",
                                 [profile_id, email.lower(), utc_now(), via])
        return cursor.rowcount == 1

    def period_addresses(self, profile_id: str, period: str) -> set[str]:
        """Lower-cased addresses that already have a digest of the profile for the period."""
        return {row[0].lower() for row in self.db.execute(
            "SELECT email FROM deliveries WHERE profile_id = ? AND period = ?", [profile_id, period])}

    def add_delivery(self, delivery: dict[str, Any], items: list[dict[str, Any]]) -> int | None:
        """Record a digest as pending, with what it tells, before it is sent. ``delivery``
        holds the deliveries columns (``message`` as bytes, compressed here); returns its id,
        or None if that address already has a digest of the profile for the period."""
        with self.transaction():
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO deliveries (profile_id, email, period, language, message_id, subject, items,"
                " changed, state, attempts, created_at, message, run_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
                [delivery["profile_id"], delivery["email"], delivery["period"], delivery["language"],
                 delivery["message_id"], delivery["subject"], delivery["items"], delivery["changed"], utc_now(),
                 compress(delivery["message"]), delivery.get("run_id")])
            if cursor.rowcount != 1:
                return None
            delivery_id = cursor.lastrowid
            self.db.conn.executemany(
                "INSERT INTO delivery_items (delivery_id, profile_id, notice_id, section, rank, deadline, status,"
                " reasons) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(delivery_id, delivery["profile_id"], item["notice_id"], item["section"], item.get("rank"),
                  item.get("deadline"), item.get("status"), _json(item["reasons"]) if item.get("reasons") else None)
                 for item in items])
        return delivery_id

    def add_failed_delivery(self, delivery: dict[str, Any], *, error: str) -> int | None:
        """Record a digest that could not be made (``error`` says why) as ``failed``, telling
        nothing: its notices stay untold for the next period. ``delivery`` as for
        ``add_delivery``, without ``message``; None if the address already has one."""
        with self.transaction():
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO deliveries (profile_id, email, period, language, message_id, subject, items,"
                " changed, state, attempts, created_at, error, run_id)"
                " VALUES (?, ?, ?, ?, ?, ?, 0, 0, 'failed', 0, ?, ?, ?)",
                [delivery["profile_id"], delivery["email"], delivery["period"], delivery.get("language"),
                 delivery.get("message_id"), delivery.get("subject"), utc_now(), error, delivery.get("run_id")])
        return cursor.lastrowid if cursor.rowcount == 1 else None

    def pending_deliveries(self, *, batch: int = 100) -> Iterator[dict[str, Any]]:
        """Digests recorded but not yet accepted by the server, oldest first, with their
        ``message`` bytes (a rerun sends exactly these, with the same Message-ID). Read in
        batches; the state is checked again just before each is handed over (``still_pending``)."""
        last = 0
        while True:
            rows = list(self.db.query(
                "SELECT id, profile_id, email, period, message_id, subject, attempts, message FROM deliveries"
                " WHERE state = 'pending' AND id > ? ORDER BY id LIMIT ?", [last, batch]))
            if not rows:
                return
            for row in rows:
                last = row["id"]
                row["message"] = decompress(row["message"])
                yield row

    def pending_count(self) -> int:
        """Digests recorded but not yet accepted by the server (or written to the outbox)."""
        return self.db.execute("SELECT count(*) FROM deliveries WHERE state = 'pending'").fetchone()[0]

    def still_pending(self, delivery_id: int) -> bool:
        """Whether a delivery is still pending (another run may have sent it meanwhile)."""
        row = self.db.execute("SELECT state FROM deliveries WHERE id = ?", [delivery_id]).fetchone()
        return bool(row) and row[0] == "pending"

    def mark_delivery(self, delivery_id: int, *, state: str, error: str | None = None, tried: bool = True) -> None:
        """After an attempt: ``sent`` (accepted: the kept message is dropped), ``failed``
        (refused for good) or ``pending`` (a temporary failure: tried again). ``tried``
        False records why a delivery was left untried without counting an attempt."""
        sent = state == "sent"
        self.db.execute(
            "UPDATE deliveries SET state = ?, error = ?, attempts = attempts + ?, sent_at = CASE WHEN ? THEN ?"
            " ELSE sent_at END, message = CASE WHEN ? THEN NULL ELSE message END WHERE id = ?",
            [state, error, int(tried), sent, utc_now(), sent, delivery_id])

    def deliveries(self, *, period: str | None = None, profile_id: str | None = None,
                   state: str | None = None) -> list[dict[str, Any]]:
        """Digest e-mails, newest first, without their message bytes."""
        sql = ("SELECT id, period, profile_id, email, state, items, changed, subject, message_id, language,"
               " attempts, created_at, sent_at, error, run_id FROM deliveries WHERE 1 = 1")
        params: list[Any] = []
        for column, value in (("period", period), ("profile_id", profile_id), ("state", state)):
            if value:
                sql += f" AND {column} = ?"
                params.append(value)
        return list(self.db.query(sql + " ORDER BY id DESC", params))

    def delivery_items(self, delivery_id: int) -> list[dict[str, Any]]:
        return list(self.db.query(
            "SELECT notice_id, section, rank, deadline, status FROM delivery_items WHERE delivery_id = ?"
            " ORDER BY section, rank", [delivery_id]))


def _parsed_run(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "stats": json.loads(row["stats"]) if row.get("stats") else {}}


def _parsed_match(row: dict[str, Any]) -> dict[str, Any]:
    """A match-log row with its ``reasons`` and ``facts`` JSON parsed."""
    row["reasons"] = json.loads(row["reasons"] or "[]")
    row["facts"] = json.loads(row["facts"] or "{}")
    return row


def _unique_lots(lots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lots with unique ids (a malformed notice may repeat one: later ones get a suffix)."""
    if all(isinstance(lot.get("lot_id"), str) and lot["lot_id"] for lot in lots) and \
            len({lot["lot_id"] for lot in lots}) == len(lots):
        return lots  # the usual case, kept as it is (a notice may hold 50,000 lots)
    seen: set[str] = set()
    result = []
    for lot in lots:
        lot_id = str(lot.get("lot_id") or "1")
        candidate, n = lot_id, 1
        while candidate in seen:
            n += 1
            candidate = f"{lot_id}#{n}"
        seen.add(candidate)
        result.append({**lot, "lot_id": candidate})
    return result
