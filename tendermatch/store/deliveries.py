"""Digests: profiles, unsubscribes, and the deliveries of digest e-mails with their items."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .connection import Connection, as_json, compress, decompress, utc_now
from .matchlog import parsed_match


class Deliveries(Connection):
    """What a digest needs (untold matches, changes) and its deliveries."""

    # -- digests -------------------------------------------------------------------------

    _TOLD = ("SELECT 1 FROM delivery_items AS told JOIN deliveries AS d ON d.id = told.delivery_id"
             " WHERE told.profile_id = matches.profile_id AND told.notice_id = matches.notice_id"
             " AND d.state IN ('pending', 'sent')")

    def untold_matches(self, profile_id: str) -> list[dict[str, Any]]:
        """The profile's match-log rows whose notice no digest of the profile has told (a
        pending digest counts: it will be sent), best rank first; reasons and facts parsed."""
        return [parsed_match(row) for row in self.db.query(
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
        rows = [{column: (as_json(profile.get(column)) if isinstance(profile.get(column), (list, tuple, dict))
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
                  item.get("deadline"), item.get("status"), as_json(item["reasons"]) if item.get("reasons") else None)
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


