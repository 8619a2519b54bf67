"""Notices: records, the keys that lead to them, their sources, versions and status."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .blocking import block_rows, days_between, title_words
from .connection import Connection, utc_now
from .records import NoticeRecord

# How many of a new notice's title words (the rarest in its deadline window) find its
# de-duplication candidates: two, so that one word spelled differently loses nothing.
FUZZY_BLOCK_WORDS = 2

_NOTICE_COLUMNS = ("kind", "stage", "status", "title", "description", "procedure_id", "deadline", "published",
                   "valid_until")



class Notices(Connection):
    """Find, store and list notices (the de-duplication candidates included)."""

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

    def get_notice(self, notice_id: str) -> NoticeRecord | None:
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
        record: Mapping[str, Any],
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
            "INSERT INTO notice_versions (notice_id, version, at, source, raw_id, change, fields, deadline)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [notice_id, version, at, source, raw_id, change, json.dumps(fields), record.get("deadline")],
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
                "INSERT INTO notice_versions (notice_id, version, at, source, raw_id, change, fields, deadline)"
                " SELECT ?, ?, ?, ?, ?, ?, ?, deadline FROM notices WHERE id = ?",
                [notice_id, version, at, source, raw_id, status, '["status"]', notice_id])

    def notices(
        self,
        *,
        since: str | None = None,
        notice_id: str | None = None,
        kind: str | None = None,
        open_on: str | None = None,
        limit: int | None = None,
    ) -> Iterator[NoticeRecord]:
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
