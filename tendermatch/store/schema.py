"""The store's schema as an ordered list of migrations, applied idempotently at start-up.

Each migration runs once, inside a transaction, and is recorded in ``_migrations``; a
store opened by a newer tendermatch gains the new tables, an up-to-date store is untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from .blocking import block_rows


def _m001_initial(db: sqlite_utils.Database) -> None:
    # Every fetched document, compressed, so `reparse` can rebuild notices without crawling.
    db.table("raw_documents").create(
        {
            "id": int,
            "sha256": str,
            "source": str,
            "url": str,
            "parent_id": int,  # a detail page points at its listing page
            "format": str,
            "fetched_at": str,
            "size": int,
            "content": bytes,  # Zstandard-compressed (store.compress)
            "status": str,  # parsed | rejected | stored | storing (its notices not all stored yet)
            "error": str,
            "run_id": int,
        },
        pk="id",
    )
    # The same bytes from one source are kept once; a detail page once per listing page
    # (so each kept listing page finds its own detail pages again at reparse).
    db.execute("CREATE UNIQUE INDEX idx_raw_documents_source_sha256 ON raw_documents"
               " (source, sha256, coalesce(parent_id, 0))")
    db.table("raw_documents").create_index(["parent_id"])

    # One row per real-world notice; `record` is the schema JSON without `sources`.
    db.table("notices").create(
        {
            "id": str,
            "kind": str,
            "stage": str,
            "status": str,
            "format": str,  # the richest format seen for it (eforms > ted-xml > ... > html)
            "last_change": str,  # publication date of the newest change notice applied
            "change_of": str,  # a change notice stored before the notice it changes: that notice's key
            "title": str,
            "buyer_name": str,
            "procedure_id": str,
            "deadline": str,
            "published": str,
            "valid_until": str,
            "version": int,
            "first_seen": str,
            "updated_at": str,
            "record": str,
        },
        pk="id",
    )
    db.table("notices").create_index(["deadline"])
    db.table("notices").create_index(["published"])
    db.table("notices").create_index(["procedure_id"])

    db.table("lots").create(
        {
            "notice_id": str,
            "lot_id": str,
            "title": str,
            "description": str,
            "cpv": str,
            "nuts": str,
            "value_amount": float,
            "value_currency": str,
            "reserved": str,
            "social": str,
        },
        pk=("notice_id", "lot_id"),
        foreign_keys=[("notice_id", "notices", "id")],
    )

    # Identifiers that lead to a notice: pub:, uuid:, ocid:, url: (see parsers.common).
    db.table("notice_keys").create({"key": str, "notice_id": str}, pk="key",
                                   foreign_keys=[("notice_id", "notices", "id")])
    db.table("notice_keys").create_index(["notice_id"])

    db.table("notice_sources").create(
        {"notice_id": str, "source": str, "url": str, "first_seen": str, "last_seen": str},
        pk=("notice_id", "source"),
        foreign_keys=[("notice_id", "notices", "id")],
    )

    # What changed, when, from which document: the notice's history.
    db.table("notice_versions").create(
        {
            "id": int,
            "notice_id": str,
            "version": int,
            "at": str,
            "source": str,
            "raw_id": int,
            "change": str,  # new | updated | changed | cancelled | merged
            "fields": str,  # JSON list of the fields that changed
        },
        pk="id",
    )
    db.table("notice_versions").create_index(["notice_id"])

    # Every run of a job (crawl, ingest, reparse; later match and digest).
    db.table("runs").create(
        {
            "id": int,
            "job": str,
            "source": str,
            "started": str,
            "finished": str,
            "outcome": str,  # running | ok (rejections allowed) | partial (some fetches failed) | failed | interrupted
            "stats": str,
            "error": str,
        },
        pk="id",
    )
    db.table("runs").create_index(["job", "started"])
    db.table("runs").create_index(["source", "outcome"])

    db.table("rejections").create(
        {"id": int, "run_id": int, "source": str, "url": str, "reason": str, "at": str},
        pk="id",
    )
    db.table("rejections").create_index(["run_id"])


def _m002_match_log(db: sqlite_utils.Database) -> None:
    # The match log: which notice was matched for which enterprise, through which lot, and
    # why. No foreign key to notices: `reparse` rebuilds notices under the same ids and
    # the log (what staff read) must survive it.
    db.table("matches").create(
        {
            "profile_id": str,
            "notice_id": str,
            "lot_id": str,
            "score": int,  # 0-100
            "rank": int,  # 1 = best within the profile's current matches
            "reasons": str,  # JSON list of sentences, for people
            "facts": str,  # JSON object with the same reasons as data (for digests in other languages)
            "kind": str,  # tender | agreement
            "deadline": str,
            "expires": str,  # an agreement's end date
            "matched_at": str,
            "run_id": int,
        },
        pk=("profile_id", "notice_id"),
    )
    db.table("matches").create_index(["notice_id"])
    db.table("matches").create_index(["matched_at"])


def _m003_deliveries(db: sqlite_utils.Database) -> None:
    # One row per digest e-mail: recorded (pending) before it is handed to the SMTP server
    # or the outbox, marked sent after it was accepted. The unique key is what makes a
    # rerun send each address one digest per period.
    db.table("deliveries").create(
        {
            "id": int,
            "profile_id": str,
            "email": str,
            "period": str,  # ISO week, e.g. 2026-W48
            "language": str,
            "message_id": str,  # kept across retries: a resent message is recognisably the same
            "subject": str,
            "items": int,  # notices in the digest (new ones; changed ones counted in `changed`)
            "changed": int,
            "state": str,  # pending | sent | failed (permanent refusal)
            "attempts": int,
            "created_at": str,
            "sent_at": str,
            "error": str,
            "message": bytes,  # the rendered message, Zstandard-compressed, until it is sent
            "run_id": int,
        },
        pk="id",
    )
    db.execute("CREATE UNIQUE INDEX idx_deliveries_profile_email_period ON deliveries (profile_id, email, period)")
    db.table("deliveries").create_index(["state"])

    # What each digest told: a later digest sends only notices not told before, and tells
    # again (once) a notice whose deadline or status changed since.
    db.table("delivery_items").create(
        {
            "delivery_id": int,
            "profile_id": str,
            "notice_id": str,
            "section": str,  # open | planning | agreements | changed
            "rank": int,
            "deadline": str,  # as told
            "status": str,  # as told
        },
        pk=("delivery_id", "notice_id"),
        foreign_keys=[("delivery_id", "deliveries", "id")],
    )
    db.table("delivery_items").create_index(["profile_id", "notice_id"])

    # Addresses that unsubscribed from a profile's digests, and when and how.
    db.table("unsubscribes").create(
        {"profile_id": str, "email": str, "at": str, "via": str},
        pk=("profile_id", "email"),
    )


def _m004_worker(db: sqlite_utils.Database) -> None:
    # The process that recorded a run: a run left 'running' by a process that is gone was
    # interrupted (the worker marks those when it starts).
    db.table("runs").add_column("pid", int)

    # What the running worker has scheduled, so `tendermatch status` in another process
    # shows the worker's own view (after a reload, or a refused one).
    db.table("worker_jobs").create(
        {
            "id": str,  # crawl:<source> | match | digest
            "kind": str,
            "source": str,
            "schedule": str,  # cron expression, or "after each crawl with news"
            "timezone": str,
            "next_run": str,  # ISO 8601 with offset, or NULL when nothing is due
            "updated_at": str,
        },
        pk="id",
    )
    # One row (id 1): the worker that holds the store's lock, its config and last reload.
    db.table("worker_state").create(
        {
            "id": int,
            "pid": int,
            "host": str,
            "started": str,
            "config": str,
            "config_loaded": str,
            "reload_error": str,  # the last refused reload's one-line reason, until a good one
            "heartbeat": str,
            "stopped": str,
        },
        pk="id",
    )


def _m005_web(db: sqlite_utils.Database) -> None:
    # The notice's description gets a column of its own so the full-text index can read it.
    db.table("notices").add_column("description", str)
    db.execute("UPDATE notices SET description = record ->> '$.description'")
    # Full-text search over titles and descriptions for `tendermatch serve`. The trigram
    # tokenizer finds a word inside a Danish compound ("rengøring" in
    # "vinduesrengøringsaftale"), which a word tokenizer cannot; queries need 3+ characters.
    # External content: the text is stored once, in notices.
    db.execute('CREATE VIRTUAL TABLE notices_fts USING FTS5 (title, description, tokenize=\'trigram\','
               ' content="notices")')
    db.execute("INSERT INTO notices_fts (notices_fts) VALUES ('rebuild')")
    # The store keeps the index in step at each commit (Store.sync_search), not row by row:
    # FTS5 writes a segment at every savepoint, and each stored document is one, which
    # doubled the time to store a crawl. Triggers only note which rows changed, and with
    # what text they were indexed (an external-content index deletes by the old values).
    db.execute("CREATE TABLE _search_queue (notice_rowid INTEGER PRIMARY KEY, indexed INTEGER NOT NULL,"
               " old_title TEXT, old_description TEXT)")
    # The first change of a row since the last sync is the one to note. Not "INSERT OR
    # IGNORE": a trigger's conflict clause gives way to the outer statement's (an upsert).
    first = "WHERE NOT EXISTS (SELECT 1 FROM _search_queue WHERE notice_rowid = {row}.rowid)"
    db.execute("CREATE TRIGGER notices_search_insert AFTER INSERT ON notices BEGIN INSERT INTO _search_queue"
               f" SELECT new.rowid, 0, NULL, NULL {first.format(row='new')}; END")
    for event in ("UPDATE OF title, description", "DELETE"):
        name = "notices_search_" + event.split()[0].lower()
        db.execute(f"CREATE TRIGGER {name} AFTER {event} ON notices BEGIN INSERT INTO _search_queue"
                   f" SELECT old.rowid, 1, old.title, old.description {first.format(row='old')}; END")
    # The enterprises as the last match saw their profile files, so staff read names, not
    # ids. `emails` is personal data: the web view shows it only to logged-in staff.
    db.table("profiles").create(
        {
            "id": str,
            "name": str,
            "emails": str,  # JSON list
            "language": str,
            "description": str,
            "keywords": str,  # JSON list
            "cpv": str,  # JSON list
            "regions": str,  # JSON list
            "max_value": float,
            "reserved_eligible": str,  # JSON list
            "updated_at": str,
        },
        pk="id",
    )
    # "Who was told about this notice, and why" reads digest items by notice, with the
    # reasons as the digest told them (the match log forgets a notice once it closes).
    db.table("delivery_items").add_column("reasons", str)  # JSON list of sentences, in the digest's language
    db.table("delivery_items").create_index(["notice_id"])


def _m006_fuzzy_blocks(db: sqlite_utils.Database) -> None:
    # Cross-source de-duplication compares a new notice only with the stored ones that share
    # its kind, a day of its deadline window and a title word (see store/blocking.py): one
    # row per (kind, deadline day, word, notice). Kept by Store.put_notice.
    db.execute("CREATE TABLE fuzzy_blocks (kind TEXT NOT NULL, day TEXT NOT NULL, word TEXT NOT NULL,"
               " notice_id TEXT NOT NULL, PRIMARY KEY (kind, day, word, notice_id)) WITHOUT ROWID")
    db.execute("CREATE INDEX idx_fuzzy_blocks_notice_id ON fuzzy_blocks (notice_id)")
    rows = db.execute("SELECT id, kind, deadline, title,"
                      " CASE WHEN json_valid(record) THEN record ->> '$.titles.da' END,"
                      " CASE WHEN json_valid(record) THEN record ->> '$.titles.en' END"
                      " FROM notices WHERE deadline IS NOT NULL")
    db.conn.executemany("INSERT OR IGNORE INTO fuzzy_blocks (kind, day, word, notice_id) VALUES (?, ?, ?, ?)",
                        (block for notice_id, kind, deadline, *titles in rows
                         for block in block_rows(notice_id, kind, deadline, titles)))


def _m007_accounts(db: sqlite_utils.Database) -> None:
    # Personal staff accounts for the console (store/accounts.py). Names are compared
    # case-blind; the hash is argon2's encoded string.
    db.execute("CREATE TABLE users (name TEXT PRIMARY KEY COLLATE NOCASE, role TEXT NOT NULL,"
               " password_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,"
               " password_set_at TEXT)")
    # A session is kept by the SHA-256 of its cookie's token: a copy of the store logs nobody in.
    db.execute("CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL,"
               " created_at TEXT NOT NULL, expires_at TEXT NOT NULL)")
    db.execute("CREATE INDEX idx_sessions_user_name ON sessions (user_name)")
    db.execute("CREATE INDEX idx_sessions_expires_at ON sessions (expires_at)")
    # Who opened which enterprise's page or exported personal data, kept [serve] access_log_days.
    db.execute("CREATE TABLE access_log (id INTEGER PRIMARY KEY, at TEXT NOT NULL, user_name TEXT NOT NULL,"
               " action TEXT NOT NULL, subject TEXT)")
    db.execute("CREATE INDEX idx_access_log_at ON access_log (at)")
    # The console's lists: deliveries and runs by state and time, notices by first sight.
    db.execute("CREATE INDEX idx_notices_first_seen ON notices (first_seen)")
    db.execute("CREATE INDEX idx_deliveries_profile_id ON deliveries (profile_id, id)")
    # The region filter reads the lots' places from this index, not from the lots' rows.
    db.execute("CREATE INDEX idx_lots_nuts ON lots (nuts, notice_id)")
    # The deadline each version left, so a notice's history can say "the deadline moved from
    # ... to ...". Versions written before this migration have none (NULL): unknown.
    db.table("notice_versions").add_column("deadline", str)


def _m008_console_list(db: sqlite_utils.Database) -> None:
    # The console's notice list filters and counts from this covering index: a notice's row
    # holds its whole record (kilobytes), so scanning the table for a filter on a column
    # read ~200 MB for 50,000 notices (85 ms a pass), the index a few MB (8 ms).
    db.execute("CREATE INDEX idx_notices_console ON notices (published, kind, stage, status, deadline, buyer_name,"
               " id)")


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_initial", _m001_initial),
    ("002_match_log", _m002_match_log),
    ("003_deliveries", _m003_deliveries),
    ("004_worker", _m004_worker),
    ("005_web", _m005_web),
    ("006_fuzzy_blocks", _m006_fuzzy_blocks),
    ("007_accounts", _m007_accounts),
    ("008_console_list", _m008_console_list),
]


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations this store lacks; return their names."""
    applied: list[str] = []
    # Nothing missing (every open but the first): a plain read, so a reader opening the
    # store never waits for a writer's lock.
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = '_migrations'").fetchone():
        done = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
        if all(name in done for name, _ in MIGRATIONS):
            return applied
    # BEGIN IMMEDIATE takes the write lock first, so two processes opening a new store at
    # once apply each migration once: the second waits (busy timeout), then finds it done.
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        done = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
        for name, apply in MIGRATIONS:
            if name not in done:
                apply(db)
                db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, datetime('now'))", [name])
                applied.append(name)
        db.conn.commit()
    except BaseException:
        db.conn.rollback()
        raise
    return applied
