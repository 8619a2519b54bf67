"""Raw documents: every fetched document, kept compressed, with its parse status."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .connection import Connection, decompress


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



class RawDocuments(Connection):
    """Save, mark and read back fetched documents."""

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

