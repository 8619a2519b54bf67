"""Reading and parsing documents before they are stored, in worker processes when there are
many (parsing is the costly part of an ingest)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..localfiles import LocalFileError, read_regular_file
from .items import Document, RawContent
from .parsers import ItemProblem, ParsedNotice, ParseError, detect_format, parse_document
from .parsers.common import (
    MAX_DOCUMENT_BYTES,
    too_large,
)

logger = logging.getLogger(__name__)


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
