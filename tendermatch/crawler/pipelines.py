"""From fetched document to stored notice: keep raw -> parse -> normalise -> de-duplicate
and version -> store. Used by every spider (through ``StorePipeline``) and by ``ingest``
and ``reparse`` (through ``NoticeIngester`` directly), so all paths store alike.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import islice
from typing import Any

from rapidfuzz import fuzz

from ..errors import TendermatchError
from ..localfiles import LocalFileError, read_regular_file
from ..store import Store, StoreError, StoreFullError, compress, utc_now
from .items import FetchFailure, Refusal
from .parsers import ItemProblem, ParsedNotice, ParseError, detect_format, parse_document
from .parsers.common import (
    MAX_DOCUMENT_BYTES,
    clean_identifier,
    country_code,
    plausible_moment,
    too_large,
    without_surrogates,
)

logger = logging.getLogger(__name__)

# Richer formats win when the same notice comes from several sources.
FORMAT_RANK = {"eforms": 5, "ted-xml": 5, "ted-api": 3, "ocds": 3, "feed": 1, "html": 1}

# A batch of stored documents is committed after this long, so another process waits at
# most about this long for the write lock, then the lock is left free for a moment.
COMMIT_SECONDS = 0.5
LOCK_PAUSE_SECONDS = 0.02
# A document with this many notices (a feed of hundreds of items) is stored in a transaction
# of its own, which lets other writers in while it stores.
LARGE_DOCUMENT_NOTICES = 100
# Documents taken ahead of a transaction hold at most about this much content.
BATCH_BYTES = 16 * 1024 * 1024

# Cross-source de-duplication thresholds (rapidfuzz scores 0-100) on normalised text.
TITLE_THRESHOLD = 88
BUYER_THRESHOLD = 80

_MERGE_FIELDS = ("title", "titles", "description", "language", "buyer", "supplier", "cpv", "nuts", "value",
                 "deadline", "published", "valid_from", "valid_until", "url", "reserved", "social",
                 "framework_agreement", "procedure_id", "notice_version", "lots", "kind", "stage")


@dataclass
class Document:
    """One fetched document on its way to the store.

    ``details`` are the detail pages of an HTML listing page ({url: bytes}), kept with it.
    """

    source: str
    url: str
    content: bytes
    fetched_at: str = field(default_factory=utc_now)
    format: str | None = None
    notice_kind: str = "tender"
    selectors: dict[str, str] | None = None
    details: dict[str, bytes] = field(default_factory=dict)


@dataclass
class RawContent:
    """A document's bytes as the store keeps them: hash, size and compressed copy."""

    sha256: str
    size: int
    compressed: bytes

    @classmethod
    def of(cls, content: bytes) -> RawContent:
        return cls(hashlib.sha256(content).hexdigest(), len(content), compress(content))


@dataclass
class RunStats:
    """Counts of one crawl, ingest or reparse run."""

    fetched: int = 0
    skipped: int = 0  # documents already kept with the same bytes
    notices: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: int = 0
    warnings: list[str] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)  # spider counters (known_skipped, ...)

    def as_dict(self) -> dict[str, Any]:
        return {"fetched": self.fetched, "skipped": self.skipped, "notices": self.notices, "new": self.new,
                "updated": self.updated, "unchanged": self.unchanged, "rejected": self.rejected,
                "errors": self.errors, "warnings": self.warnings, **self.extra}

    def counts(self) -> dict[str, int]:
        """The counters, to put back with ``restore`` when a document is rolled back."""
        return {name: value for name, value in self.__dict__.items() if isinstance(value, int)}

    def restore(self, counts: dict[str, int]) -> None:
        self.__dict__.update(counts)

    def suspicion(self) -> str | None:
        """Why this run looks wrong although nothing failed, or None: it fetched new or
        changed documents and found no notice in any. A listing whose layout changed (the
        selectors find nothing) or a feed that suddenly serves no items looks like this, and
        must not pass for a quiet day. Documents kept already with the same bytes do not count."""
        fresh = self.fetched - self.skipped
        if fresh <= 0 or self.notices:
            return None
        return (f"no notices in {fresh} new or changed document(s): the source's page layout or format"
                " may have changed")

    def troubled(self) -> bool:
        """Anything rejected, failed or suspicious: a command reporting this run exits 1."""
        return bool(self.rejected or self.errors or self.suspicion())

    def summary(self) -> str:
        return (f"fetched {self.fetched}, new {self.new}, updated {self.updated}, unchanged {self.unchanged},"
                f" rejected {self.rejected}, errors {self.errors}")


_PUNCT = re.compile(r"[^\w]+")


def normalise_text(text: str | None) -> str:
    """Lower case, NFKC, punctuation to spaces: for fuzzy comparison only."""
    if not text:
        return ""
    return _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def same_real_notice(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True when two records from different sources describe one notice: titles alike
    (in any language either carries), buyers alike when both are known, deadlines within
    a day (the caller's candidate query already ensured that)."""
    titles_a, titles_b = _comparable_titles(a), _comparable_titles(b)
    best = max((fuzz.token_sort_ratio(x, y, score_cutoff=TITLE_THRESHOLD) for x in titles_a for y in titles_b),
               default=0)
    if best < TITLE_THRESHOLD:  # the titles first: most candidates differ there, and it is cheaper
        return False
    both_buyers = bool((a.get("buyer") or {}).get("name") and (b.get("buyer") or {}).get("name"))
    return best >= (TITLE_THRESHOLD if both_buyers else 95) and same_buyer(a, b)


def _comparable_titles(record: dict[str, Any]) -> set[str]:
    """The original title and the Danish and English ones: what a municipal page would show.
    (TED's titles in every EU language are machine-made from the CPV: no help here.)"""
    titles = record.get("titles") or {}
    return {normalise_text(t) for t in (record.get("title"), titles.get("da"), titles.get("en")) if t}


_DATE_FIELDS = ("deadline", "published", "valid_from", "valid_until")


class UnusableRecord(TendermatchError, ValueError):
    """A parsed record that cannot be stored (no usable id): rejected alone."""


def _scrubbed(value: Any, *, checked: bool = False) -> Any:
    """``value`` with every string in it free of lone surrogates and NUL (neither can be
    stored as UTF-8 nor shown safely)."""
    if not checked and isinstance(value, (dict, list)):
        # Nearly every record is clean: one C-speed look at the whole of it (a notice may
        # hold 50,000 lots) rather than a Python call per string.
        try:
            text = json.dumps(value, ensure_ascii=False)
            text.encode("utf-8")  # fails on a lone surrogate
            if "\\u0000" not in text:  # json writes NUL as \u0000
                return value
        except (TypeError, ValueError):
            pass
        return _scrubbed(value, checked=True)
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, dict):
        return {_scrubbed(key, checked=True): _scrubbed(item, checked=True) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, checked=True) for item in value]
    return value


def normalise_record(record: dict[str, Any], *, url: str | None,
                     warnings: list[str] | None = None) -> dict[str, Any]:
    """Make a parsed record ready to store: defaults, cleaned codes, a url, lot ids as text,
    ids without control or bidi characters, text without lone surrogates, and no date the
    store cannot hold (a dropped one is added to ``warnings``). Raises UnusableRecord when
    no id is left."""
    record = _scrubbed(dict(record))
    record.pop("sources", None)
    record["id"] = clean_identifier(record.get("id"))
    if not record["id"]:
        raise UnusableRecord("no usable id")
    record["procedure_id"] = clean_identifier(record.get("procedure_id"))
    for name in _DATE_FIELDS:
        if record.get(name) is not None and not plausible_moment(record[name]):
            if warnings is not None:
                warnings.append(f"{url}: {record['id']}: {name} {str(record[name])[:40]!r} is not a usable date;"
                                " left out")
            record[name] = None
    record["url"] = record.get("url") or url
    record["title"] = (record.get("title") or "").strip()
    record["titles"] = {lang: text for lang, text in sorted((record.get("titles") or {}).items()) if text}
    if record.get("buyer"):
        record["buyer"] = {**record["buyer"], "country": country_code(record["buyer"].get("country"))}
    for lot in record["lots"]:
        lot["lot_id"] = clean_identifier(lot.get("lot_id")) or "1"
        lot.setdefault("nuts", [])
        lot.setdefault("value", None)
    return record


def _changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [name for name in (*_MERGE_FIELDS, "status") if old.get(name) != new.get(name)]


def _empty(value: Any) -> bool:
    return value in (None, "", [], {}, False)


def fill_missing(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with its empty fields filled from ``new``."""
    merged = dict(old)
    for name in _MERGE_FIELDS:
        if _empty(merged.get(name)) and not _empty(new.get(name)):
            merged[name] = new[name]
    if new.get("titles"):
        merged["titles"] = {**new["titles"], **(old.get("titles") or {})}
    return merged


def override(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` over ``old``: ``new``'s non-empty fields win, the id stays."""
    merged = dict(old)
    for name in _MERGE_FIELDS:
        if not _empty(new.get(name)):
            merged[name] = new[name]
    merged["titles"] = {**(old.get("titles") or {}), **(new.get("titles") or {})}
    if new.get("status") == "cancelled":
        merged["status"] = "cancelled"
    merged["id"] = old["id"]
    return merged


def apply_change(old: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """A change notice applied to the notice it changes. An eForms change notice restates
    the whole notice: its values win. A corrigendum (stage 'change', e.g. TED F14) carries
    only what changed: the deadline and, for a cancellation, the status."""
    if change.get("stage") != "change":
        merged = override(old, change)
    else:
        merged = dict(old)
        if change.get("deadline"):
            merged["deadline"] = change["deadline"]
        if change.get("notice_version"):
            merged["notice_version"] = change["notice_version"]
    if change.get("status") == "cancelled":
        merged["status"] = "cancelled"
    merged["id"] = old["id"]
    return merged


def same_buyer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True unless both buyers are known and clearly differ."""
    buyer_a = normalise_text((a.get("buyer") or {}).get("name"))
    buyer_b = normalise_text((b.get("buyer") or {}).get("name"))
    return not (buyer_a and buyer_b) or fuzz.token_set_ratio(buyer_a, buyer_b) >= BUYER_THRESHOLD


def _before(day: str | None, other: str | None) -> bool:
    """True when both dates are known and ``day`` is earlier."""
    return bool(day and other and day < other)


@dataclass
class PreparedDocument:
    """A document after the CPU-heavy, store-free work: hashed, compressed, parsed. Built by
    ``prepare_document``, which worker processes can run; stored by ``NoticeIngester``."""

    document: Document
    raw: RawContent | None  # None: already kept (reparse)
    details: dict[str, RawContent]
    format: str | None = None
    notices: list[ParsedNotice] = field(default_factory=list)
    rejected: str | None = None  # why the document cannot be used
    parser_error: str | None = None  # a bug in a parser: counted as an error
    warnings: list[str] = field(default_factory=list)
    item_problems: list[ItemProblem] = field(default_factory=list)  # items lost, the rest usable


def prepare_document(document: Document, *, max_bytes: int = MAX_DOCUMENT_BYTES,
                     keep_raw: bool = True) -> PreparedDocument:
    """Hash, compress and parse one document; pure (no store), so it can run in a worker.
    The content itself is dropped (the compressed copy stays) to keep memory small."""
    prepared = PreparedDocument(
        document=document,
        raw=RawContent.of(document.content) if keep_raw else None,
        details={url: RawContent.of(content) for url, content in document.details.items()} if keep_raw else {},
    )
    try:
        prepared.format = document.format or detect_format(document.content)
        prepared.notices = parse_document(
            document.content, url=document.url, format=prepared.format, html_selectors=document.selectors,
            notice_kind=document.notice_kind, html_details=document.details, warnings=prepared.warnings,
            problems=prepared.item_problems, max_bytes=max_bytes)
    except ParseError as error:
        prepared.rejected = str(error)
    except Exception as error:  # a parser bug must not lose the rest of the batch
        logger.debug("parser error on %s", document.url, exc_info=True)  # the traceback only in a debug log
        prepared.parser_error = f"parser error: {type(error).__name__}: {error}".splitlines()[0][:300]
    prepared.document = Document(**{**document.__dict__, "content": b"", "details": {}})
    return prepared


def prepare_file(path: str, source: str, max_bytes: int) -> PreparedDocument:
    """Read and prepare one local file (what ``ingest``'s worker processes run)."""
    from pathlib import Path

    file = Path(path)
    document = Document(source=source, url=file.as_uri(), content=b"")
    try:
        size = file.stat().st_size
    except OSError as error:
        return PreparedDocument(document=document, raw=None, details={}, rejected=f"cannot read: {error.strerror}")
    if size > max_bytes:  # refused unread
        return PreparedDocument(document=document, raw=None, details={}, rejected=too_large(size, max_bytes))
    try:  # a regular file only, never more than the limit: /dev/zero or a FIFO is no notice
        document.content = read_regular_file(file, max_bytes=max_bytes)
    except LocalFileError as error:
        reason = str(error).removeprefix(f"{file}: ")
        return PreparedDocument(document=document, raw=None, details={}, rejected=reason)
    return prepare_document(document, max_bytes=max_bytes)


def prepare_in_parallel(function: Callable[..., PreparedDocument], tasks: Iterable[tuple[Any, ...]], *,
                        workers: int, chunk: int = 64) -> Iterator[PreparedDocument]:
    """``function(*task)`` for every task in worker processes, results in task order.
    Tasks travel in chunks (less overhead per document) and at most two chunks per worker
    are in flight, so memory does not grow with the batch."""
    if workers <= 1:
        for task in tasks:
            yield function(*task)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[list[PreparedDocument]]] = deque()
        for part in _chunks(tasks, chunk):
            pending.append(pool.submit(_prepare_chunk, function, part))
            if len(pending) >= workers * 2:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    part: list[Any] = []
    for item in items:
        part.append(item)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


def _prepare_chunk(function: Callable[..., PreparedDocument], tasks: list[tuple[Any, ...]]) -> list[PreparedDocument]:
    return [function(*task) for task in tasks]


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
            old = self.store.get_notice(target) if target else None
            if target and old is not None:
                meta = self.store.notice_meta(target)
                if _before(record.get("published"), meta.get("last_change")):
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

        old = self.store.get_notice(existing)
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
        if rank > old_rank or (rank == old_rank and not _is_older(record, old)):
            new = override(old, record)
        else:
            new = fill_missing(old, record)
        return self._write(new, old, change="updated", format=best_format, last_change=meta.get("last_change"),
                           change_of=meta.get("change_of"), **write)

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
            fields = _changed_fields(old, new)
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


def _is_older(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """True when ``new`` was published before ``old`` (both dates known)."""
    return bool(new.get("published") and old.get("published") and new["published"] < old["published"])


class StorePipeline:
    """Scrapy item pipeline: stores ``Document`` items, counts ``FetchFailure`` and
    ``Refusal`` items, and on close records the run's outcome and stats in the store.

    Settings: ``TENDERMATCH_STORE`` (path), ``TENDERMATCH_MAX_BYTES``. The spider supplies
    ``source_name`` and ``run_id``.
    """

    def __init__(self, crawler: Any):
        self.crawler = crawler
        settings = crawler.settings
        self.store_path = settings.get("TENDERMATCH_STORE")
        self.max_bytes = settings.getint("TENDERMATCH_MAX_BYTES", MAX_DOCUMENT_BYTES)
        self.store: Store | None = None
        self.ingester: NoticeIngester | None = None
        self.store_full: StoreFullError | None = None  # set when the disk refused a write

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        return cls(crawler)

    def open_spider(self, spider: Any = None) -> None:
        spider = spider or self.crawler.spider
        self.store = Store.open(self.store_path)
        self.ingester = NoticeIngester(self.store, source=spider.source_name, run_id=spider.run_id,
                                       max_bytes=self.max_bytes)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        assert self.ingester is not None
        ingester = self.ingester
        if self.store_full is not None:
            return item  # the crawl is closing: what is still in flight is fetched again next run
        counts = ingester.stats.counts()
        try:
            if isinstance(item, Document):
                ingester.process(item)
            elif isinstance(item, Refusal):
                ingester.stats.fetched += 1
                ingester.reject(item.url, item.reason)
            elif isinstance(item, FetchFailure):
                ingester.reject(item.url, item.reason, error=True)
        except StoreFullError as error:
            # Every later write would fail too: stop the crawl rather than fetch for nothing.
            ingester.stats.restore(counts)  # that document was rolled back
            ingester.stats.errors += 1
            self.store_full = error
            logger.error("%s; the crawl stops (what it stored so far is kept)", error)
            from scrapy.utils.defer import deferred_from_coro  # Scrapy only here: ingest runs without it

            deferred_from_coro(self.crawler.engine.close_spider_async(reason="store_full"))
        except Exception as error:  # the store failed otherwise: count it, keep crawling
            ingester.stats.restore(counts)
            ingester.stats.errors += 1
            ingester.stats.rejections.append(f"{getattr(item, 'url', '?')}: store error: {error}")
            logger.error("store error on %s: %s", getattr(item, "url", "?"), error)
        progress.report(ingester.source, ingester.stats)
        return item

    def close_spider(self, spider: Any = None) -> None:
        if self.ingester is None or self.store is None:
            return
        stats = self.ingester.finish(extra_warnings=self.crawler.stats.get_value("tendermatch/warnings", []))
        for name in ("known_skipped", "no_xml_link", "retry_after_waits", "refused_urls", "incomplete"):
            value = self.crawler.stats.get_value(f"tendermatch/{name}")
            if value:
                stats.extra[name] = value
        self.crawler.stats.set_value("tendermatch/result", stats)
        try:
            if self.store_full is not None:
                self.ingester.record_run(outcome="failed", error=f"stopped: {self.store_full}")
            else:
                self.ingester.record_run()
        except StoreError as error:  # still no room: the next worker to start marks it interrupted
            logger.error("%s: the run's outcome could not be recorded", error)
        finally:
            self.store.close()


def run_outcome(stats: RunStats) -> str:
    """ok: every fetch worked (bad documents may have been rejected); partial: some fetches
    failed or the crawl stopped before the end; failed: nothing could be fetched;
    suspicious: documents were fetched but held no notice (see ``RunStats.suspicion``)."""
    if stats.errors and stats.fetched == 0:
        return "failed"
    if stats.suspicion():
        return "suspicious"
    return "partial" if stats.errors or stats.extra.get("incomplete") else "ok"


class _Progress:
    """A progress line on stderr at most every 2 seconds (and a last one at the end)."""

    def __init__(self) -> None:
        self.last = 0.0
        self.enabled = False

    def report(self, source: str, stats: RunStats) -> None:
        import sys
        import time

        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last >= 2:
            self.last = now
            print(f"  {source}: {stats.summary()}", file=sys.stderr, flush=True)


progress = _Progress()
