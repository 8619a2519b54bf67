"""From fetched document to stored notice: keep raw -> parse -> normalise -> de-duplicate
and version -> store. Used by every spider (through ``pipelines.StorePipeline``) and by
``ingest`` and ``reparse`` (through ``NoticeIngester`` directly), so all paths store alike."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from itertools import islice
from typing import Any

from ..store import Store, StoreError, StoreFullError
from .dedupe import (
    FORMAT_RANK,
    apply_change,
    changed_fields,
    fill_missing,
    is_older,
    override,
    published_before,
    same_buyer,
    same_real_notice,
)
from .items import Document
from .parsers import ParsedNotice
from .parsers.common import (
    MAX_DOCUMENT_BYTES,
    clean_identifier,
)
from .prepare import PreparedDocument, prepare_document
from .records import UnusableRecord, normalise_record
from .stats import RunStats, run_outcome

logger = logging.getLogger(__name__)


# A batch of stored documents is committed after this long, so another process waits at
# most about this long for the write lock, then the lock is left free for a moment.
COMMIT_SECONDS = 0.5
LOCK_PAUSE_SECONDS = 0.02
# A document with this many notices (a feed of hundreds of items) is stored in a transaction
# of its own, which lets other writers in while it stores.
LARGE_DOCUMENT_NOTICES = 100
# Documents taken ahead of a transaction hold at most about this much content.
BATCH_BYTES = 16 * 1024 * 1024


class NoticeIngester:
    """Stores documents from one source into a store and counts what happened.

    Not tied to Scrapy: spiders reach it through ``StorePipeline``; ``ingest`` and
    ``reparse`` call it directly (``store_prepared`` with documents prepared in workers).
    """

    def __init__(self, store: Store, *, source: str, run_id: int | None = None,
                 max_bytes: int = MAX_DOCUMENT_BYTES, keep_raw: bool = True):
        self.store = store
        self.source = source
        self.run_id = run_id
        self.max_bytes = max_bytes
        self.keep_raw = keep_raw
        self.stats = RunStats()

    # -- documents -----------------------------------------------------------------------

    def reject(self, url: str, reason: str, *, error: bool = False) -> None:
        """Count and record a document that could not be used: ``error`` for a failed fetch
        or a bug (an error), else bad content (a rejection)."""
        if error:
            self.stats.errors += 1
        else:
            self.stats.rejected += 1
        line = f"{url}: {reason}"
        self.stats.rejections.append(line)
        logger.info("%s %s", "failed" if error else "rejected", line)
        self.store.add_rejection(run_id=self.run_id, source=self.source, url=url, reason=reason)

    def process(self, document: Document, *, raw_id: int | None = None) -> list[str]:
        """Keep, parse and store one document; return the ids of the notices it touched.

        ``raw_id`` is given by ``reparse`` (the document is already kept). A document the
        store already holds with the same bytes is skipped (nothing changed).
        """
        keep = raw_id is None and self.keep_raw
        return self.store_prepared(prepare_document(document, max_bytes=self.max_bytes, keep_raw=keep),
                                   raw_id=raw_id)

    def store_all(self, prepared: Iterable[PreparedDocument], *, commit_every: int = 200,
                  commit_seconds: float = COMMIT_SECONDS) -> RunStats:
        """Store many prepared documents in transactions of at most ``commit_every``
        documents or ``commit_seconds`` of storing, whichever comes first, so that another
        writer (a `match`, a crawl) never waits long; each document is still all-or-nothing
        (a savepoint of its own). A document of ``LARGE_DOCUMENT_NOTICES`` notices or more
        gets a transaction of its own, in which it lets other writers in every
        ``commit_seconds`` (see ``store_prepared``). Documents are taken from ``prepared``
        (which may be parsing them) before the write lock is taken, never while holding it."""
        iterator = iter(prepared)
        waiting: deque[PreparedDocument] = deque()
        while True:
            if not waiting:
                waiting.extend(_take(iterator, commit_every, max_bytes=BATCH_BYTES))
                if not waiting:
                    return self.stats
            if len(waiting[0].notices) >= LARGE_DOCUMENT_NOTICES:
                self._store_alone(waiting.popleft())
                continue
            started = time.monotonic()
            with self.store.transaction():
                while waiting and len(waiting[0].notices) < LARGE_DOCUMENT_NOTICES:
                    self._store_alone(waiting.popleft())
                    if time.monotonic() - started >= commit_seconds:
                        break
            if waiting:
                # SQLite's busy handler polls (every 100 ms at most): a writer waiting for the
                # lock needs a moment between two long transactions to get it.
                time.sleep(LOCK_PAUSE_SECONDS)

    def _store_alone(self, item: PreparedDocument) -> None:
        """``store_prepared``, so that a document that fails costs only itself: it is rolled
        back and counted as an error; a full disk stops the batch."""
        counts = self.stats.counts()
        try:
            self.store_prepared(item)
        except StoreFullError:
            self.stats.restore(counts)
            raise  # every later document would fail the same way
        except Exception as error:  # that document is rolled back; the batch goes on
            self.stats.restore(counts)
            self.stats.fetched += 1
            self.reject(item.document.url, _failure(error), error=True)

    def store_prepared(self, prepared: PreparedDocument, *, raw_id: int | None = None) -> list[str]:
        """Keep a prepared document and store its notices, each in a savepoint of its own, in
        one transaction (a savepoint inside a batch): a document is kept whole or not at all.
        A document that takes longer than ``COMMIT_SECONDS`` to store (a feed of 2,000 items,
        50,000 lots), when its transaction is the outermost (a crawl), lets other writers in
        every ``COMMIT_SECONDS``: it is marked 'storing' first, so one cut off mid-way (a
        crash, a full disk) is stored again by the next run, not skipped as unchanged."""
        document = prepared.document
        self.stats.fetched += 1
        self.stats.warnings.extend(prepared.warnings)
        reason = prepared.rejected or prepared.parser_error
        with self.store.transaction():
            status = "rejected" if reason else "parsed"
            if prepared.raw is not None:
                raw_id, is_new = self.store.save_raw(
                    source=document.source, url=document.url, sha256=prepared.raw.sha256,
                    compressed=prepared.raw.compressed, size=prepared.raw.size, fetched_at=document.fetched_at,
                    format=prepared.format, run_id=self.run_id, status=status, error=reason)
                new_details = [self.store.save_raw(source=document.source, url=detail_url, sha256=detail.sha256,
                                                   compressed=detail.compressed, size=detail.size,
                                                   fetched_at=document.fetched_at, format="html-detail",
                                                   parent_id=raw_id, run_id=self.run_id)[1]
                               for detail_url, detail in prepared.details.items()]
                if not is_new:
                    # The same bytes again, and no detail page changed: nothing to do.
                    if self.store.raw_status(raw_id) == "parsed" and not any(new_details):
                        self.stats.skipped += 1
                        return []
                    self.store.mark_raw(raw_id, status, reason, format=prepared.format)
            elif raw_id is not None:
                self.store.mark_raw(raw_id, status, reason, format=prepared.format)
            if reason:
                self.reject(document.url, reason, error=not prepared.rejected)
                return []
            for problem in prepared.item_problems:
                self.reject(document.url, f"{problem.item}: {problem.reason}", error=problem.error)
            stored: list[str] = []
            started, marked = time.monotonic(), False
            for notice in prepared.notices:
                stored.extend(self._store_one(notice, format=prepared.format, raw_id=raw_id, url=document.url))
                if time.monotonic() - started >= COMMIT_SECONDS and self.store.outermost():
                    if not marked and raw_id is not None:
                        self.store.mark_raw(raw_id, "storing", None, format=prepared.format)
                        marked = True
                    self.store.let_writers_in()
                    started = time.monotonic()
            if marked and raw_id is not None:
                self.store.mark_raw(raw_id, "parsed", None, format=prepared.format)
            return stored

    def _store_one(self, notice: ParsedNotice, *, format: str | None, raw_id: int | None, url: str) -> list[str]:
        """``store_notice`` in a savepoint of its own, so that a notice that cannot be stored
        costs only itself: bad content is a rejection, anything else an error, each one line
        naming the document and the notice; the document's other notices are stored."""
        counts = self.stats.counts()
        try:
            with self.store.transaction():
                return [self.store_notice(notice, format=format, raw_id=raw_id, url=url)]
        except StoreFullError:
            raise  # every later write would fail the same way
        except UnusableRecord as error:
            self.stats.restore(counts)
            self.reject(url, f"notice {_notice_label(notice)}: {error}")
        except Exception as error:
            self.stats.restore(counts)
            logger.debug("cannot store notice %s of %s", _notice_label(notice), url, exc_info=True)
            self.reject(url, f"notice {_notice_label(notice)}: {_failure(error)}", error=True)
        return []

    # -- notices -------------------------------------------------------------------------

    def store_notice(self, notice: ParsedNotice, *, format: str | None, raw_id: int | None, url: str | None) -> str:
        """De-duplicate, version and store one parsed notice; return its stored id."""
        self.stats.notices += 1
        record = normalise_record(notice.record, url=url, warnings=self.stats.warnings)
        keys = [key for key in (clean_identifier(key) for key in notice.keys) if key]
        if record["id"] and f"id:{record['id']}" not in keys:
            keys.append(f"id:{record['id']}")
        rank = FORMAT_RANK.get(format or "", 1)
        write: dict[str, Any] = {"keys": keys, "raw_id": raw_id, "source_url": url}

        # 1. A change notice or cancellation updates the notice it refers to, unless a
        #    newer change was applied already (documents arrive in any order).
        if notice.changes:
            target = self.store.notice_id_for_keys([notice.changes])
            old = self._stored(target) if target else None
            if target and old is not None:
                meta = self.store.notice_meta(target)
                if published_before(record.get("published"), meta.get("last_change")):
                    return self._write(old, old, change="changed", format=meta["format"],
                                       last_change=meta["last_change"], **write)
                change = "cancelled" if record.get("status") == "cancelled" else "changed"
                return self._write(apply_change(old, record), old, change=change, format=meta["format"],
                                   last_change=record.get("published") or meta.get("last_change"), **write)
            # Stored on its own until the notice it changes arrives (then it is applied to it).
            keys.append(notice.changes)
            if self.store.notice_id_for_keys(keys) is None:
                self._close_if_resulted(record, raw_id)
                return self._write(record, None, change="new", format=format, change_of=notice.changes, **write)

        # 2. The same notice again (same publication number, notice uuid, ocid or url).
        existing = self.store.notice_id_for_keys(keys)
        # 3. The same notice of the same procedure and stage from another source.
        if not existing and record.get("procedure_id") and record["stage"] != "result":
            existing = next((c["id"] for c in self.store.procedure_candidates(
                record["procedure_id"], stage=record["stage"], other_than_source=self.source)
                if same_buyer(c, record)), None)
        # 4. Fuzzy: title + buyer + deadline (e.g. a TED notice and a municipality's page).
        if not existing and record.get("deadline"):
            existing = self._fuzzy_match(record)

        if not existing:
            self._close_procedure(record, raw_id)
            self._close_if_resulted(record, raw_id)
            return self._write(record, None, change="new", format=format, **write)

        old = self._stored(existing)
        if old is None:  # deleted since it was found: store the notice as new
            return self._write(record, None, change="new", format=format, **write)
        meta = self.store.notice_meta(existing)
        old_rank = FORMAT_RANK.get(meta.get("format") or "", 1)
        best_format = format if rank > old_rank else meta.get("format")
        if meta.get("change_of") and not notice.changes and meta["change_of"] in keys:
            # The original of a change notice stored before it: the original, changed.
            changed = apply_change(dict(record, id=old["id"]), old)
            return self._write(changed, old, change="updated", format=best_format,
                               last_change=old.get("published"), **write)
        # A richer format wins; among equals the newer publication wins (an older copy
        # only fills gaps).
        if rank > old_rank or (rank == old_rank and not is_older(record, old)):
            new = override(old, record)
        else:
            new = fill_missing(old, record)
        return self._write(new, old, change="updated", format=best_format, last_change=meta.get("last_change"),
                           change_of=meta.get("change_of"), **write)

    def _stored(self, notice_id: str) -> dict[str, Any] | None:
        """The stored record, as the plain dict the de-duplication rules merge field by field."""
        record = self.store.get_notice(notice_id)
        return dict(record) if record is not None else None

    def _fuzzy_match(self, record: dict[str, Any]) -> str | None:
        day = record["deadline"][:10]
        try:
            start = date.fromisoformat(day) - timedelta(days=1)
        except ValueError:
            return None
        titles = record.get("titles") or {}
        candidates = self.store.fuzzy_candidates(kind=record["kind"], deadline_from=start.isoformat(),
                                                 deadline_to=(start + timedelta(days=3)).isoformat(),
                                                 other_than_source=self.source,
                                                 titles=(record.get("title"), titles.get("da"), titles.get("en")))
        for candidate in candidates:
            if candidate["id"] != record["id"] and same_real_notice(candidate, record):
                return candidate["id"]
        return None

    def _close_procedure(self, record: dict[str, Any], raw_id: int | None) -> None:
        """A result notice closes the earlier notices of its procedure."""
        if record["stage"] == "result" and record.get("procedure_id"):
            earlier = [nid for nid, stage in self.store.notice_ids_for_procedure(record["procedure_id"])
                       if stage in ("planning", "competition") and nid != record["id"]]
            active = [nid for nid in earlier if (self.store.get_notice(nid) or {}).get("status") == "active"]
            if active:
                self.store.set_status(active, "closed", source=self.source, raw_id=raw_id)

    def _close_if_resulted(self, record: dict[str, Any], raw_id: int | None) -> None:
        """A planning or competition notice whose procedure already has a result arrives closed."""
        if (record["stage"] in ("planning", "competition") and record.get("procedure_id")
                and record.get("status") == "active"
                and any(stage == "result" for _, stage in self.store.notice_ids_for_procedure(record["procedure_id"]))):
            record["status"] = "closed"

    def _write(self, new: dict[str, Any], old: dict[str, Any] | None, *, keys: list[str], raw_id: int | None,
               source_url: str | None, change: str, format: str | None, last_change: str | None = None,
               change_of: str | None = None) -> str:
        if old is None:
            self.stats.new += 1
            fields: list[str] = []
        else:
            fields = changed_fields(old, new)
            if not fields:
                self.stats.unchanged += 1
                self.store.add_keys(old["id"], keys)
                self.store.add_source(old["id"], self.source, source_url)
                return old["id"]
            self.stats.updated += 1
        self.store.put_notice(new, keys=keys, source=self.source, source_url=source_url, raw_id=raw_id,
                              change=change, fields=fields, format=format, last_change=last_change,
                              change_of=change_of)
        return new["id"]

    def record_run(self, *, outcome: str | None = None, error: str | None = None) -> None:
        """Write this run's outcome (by default from the stats), stats and first problems."""
        if self.run_id:
            problems = [self.stats.suspicion() or "", *self.stats.rejections[:20]]
            self.store.finish_run(self.run_id, outcome=outcome or run_outcome(self.stats), stats=self.stats.as_dict(),
                                  error=error or "; ".join(filter(None, problems)) or None)

    def finish(self, *, extra_warnings: list[str] | None = None) -> RunStats:
        self.stats.warnings.extend(extra_warnings or [])
        return self.stats


def _take(documents: Iterator[PreparedDocument], count: int, *, max_bytes: int) -> list[PreparedDocument]:
    """The next ``count`` prepared documents, fewer once they hold ``max_bytes`` of content
    (a batch of large documents is not all kept in memory at once); at least one."""
    taken: list[PreparedDocument] = []
    size = 0
    for document in islice(documents, count):
        taken.append(document)
        size += document.raw.size if document.raw is not None else 0
        if size >= max_bytes:
            break
    return taken


def _notice_label(notice: ParsedNotice) -> str:
    """A notice as a problem line names it: its id (printable, bounded) or its first key."""
    label = clean_identifier(notice.record.get("id")) or next(
        (key for key in (clean_identifier(key) for key in notice.keys) if key), None)
    return (label or "without id")[:120]


def _failure(error: BaseException) -> str:
    """An unexpected error in one line: its type and first line, bounded."""
    text = str(error).splitlines()[0] if str(error) else ""
    if isinstance(error, StoreError):
        return f"store error: {text}"[:300]
    return f"{type(error).__name__}: {text}"[:300]
