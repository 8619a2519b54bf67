"""The match log: which profile was matched to which notice, why, and when."""

from __future__ import annotations

import json
from typing import Any

from .connection import Connection, as_json, utc_now


class MatchLog(Connection):
    """Replace and read the match log."""

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
                     row["reasons"] if isinstance(row["reasons"], str) else as_json(row["reasons"]),
                     row.get("facts") if isinstance(row.get("facts"), str) else as_json(row.get("facts") or {}),
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
        return [parsed_match(row) for row in self.db.query(sql, params)]



def parsed_match(row: dict[str, Any]) -> dict[str, Any]:
    """A match-log row with its ``reasons`` and ``facts`` JSON parsed."""
    row["reasons"] = json.loads(row["reasons"] or "[]")
    row["facts"] = json.loads(row["facts"] or "{}")
    return row

