"""Runs of every job, their rejections, and the worker's published state."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .connection import Connection, as_json, utc_now


class Runs(Connection):
    """Start, finish and list runs; the worker's state and jobs."""

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
        return parsed_run(rows[0]) if rows else None

    def finish_run(self, run_id: int, *, outcome: str, stats: dict[str, Any], error: str | None = None) -> None:
        """Record a run's end; a StoreError (not a bare sqlite3 error) when it cannot be
        written, e.g. on a full disk, so the caller can say so in one line."""
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET finished = ?, outcome = ?, stats = ?, error = ? WHERE id = ?",
                [utc_now(), outcome, as_json(stats), error, run_id],
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
        return parsed_run(rows[0]) if rows else None

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



def parsed_run(row: dict[str, Any]) -> dict[str, Any]:
    """A runs row with its stats JSON read."""
    return {**row, "stats": json.loads(row["stats"]) if row.get("stats") else {}}

