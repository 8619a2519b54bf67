"""What the web view shows: Datasette metadata with the canned queries staff use.

Every query is read-only SQL over the store's tables. Parameters left empty mean "all";
``:_week_start`` is a magic parameter (``plugin.TendermatchPlugin``): this week's Monday
00:00 in the worker's time zone, as a UTC timestamp like the store's.
"""

from __future__ import annotations

from html import escape
from typing import Any

# A JSON list of sentences as one readable cell.
_REASONS = "(SELECT group_concat(value, '; ') FROM json_each({column}))"

# Reads as "open for bids now": an active competition whose deadline has not passed
# (a notice without a deadline counts as open).
_OPEN = ("n.kind = 'tender' AND n.status = 'active' AND n.stage = 'competition'"
         " AND (n.deadline IS NULL OR julianday(n.deadline) >= julianday('now'))")

MATCH_LOG_SQL = f"""
SELECT p.name AS enterprise, m.rank, m.score, n.title, n.buyer_name AS buyer, m.deadline,
       {_REASONS.format(column="m.reasons")} AS reasons,
       EXISTS (SELECT 1 FROM delivery_items AS di JOIN deliveries AS d ON d.id = di.delivery_id
               WHERE di.profile_id = m.profile_id AND di.notice_id = m.notice_id AND d.state = 'sent') AS told,
       m.notice_id, m.lot_id, m.kind, m.expires, m.profile_id AS enterprise_id, m.matched_at
FROM matches AS m
LEFT JOIN profiles AS p ON p.id = m.profile_id
LEFT JOIN notices AS n ON n.id = m.notice_id
WHERE m.matched_at >= :_week_start
  AND (:enterprise = '' OR m.profile_id = :enterprise OR tm_fold(p.name) LIKE '%' || tm_fold(:enterprise) || '%')
ORDER BY m.profile_id, m.rank
""".strip()

NOTICE_RECIPIENTS_SQL = f"""
SELECT n.title, p.name AS enterprise, di.profile_id AS enterprise_id, d.email, d.period,
       d.state, d.sent_at, di.section, di.rank,
       {_REASONS.format(column="coalesce(di.reasons, m.reasons)")} AS reasons
FROM delivery_items AS di
JOIN deliveries AS d ON d.id = di.delivery_id
LEFT JOIN profiles AS p ON p.id = di.profile_id
LEFT JOIN notices AS n ON n.id = di.notice_id
LEFT JOIN matches AS m ON m.profile_id = di.profile_id AND m.notice_id = di.notice_id
WHERE di.notice_id = :notice
UNION ALL
SELECT n.title, p.name, m.profile_id, NULL, NULL, 'matched, not sent yet', NULL, NULL, m.rank,
       {_REASONS.format(column="m.reasons")}
FROM matches AS m
LEFT JOIN profiles AS p ON p.id = m.profile_id
LEFT JOIN notices AS n ON n.id = m.notice_id
WHERE m.notice_id = :notice
  AND NOT EXISTS (SELECT 1 FROM delivery_items AS di WHERE di.profile_id = m.profile_id AND di.notice_id = m.notice_id)
ORDER BY 5, 2, 4
""".strip()

DELIVERIES_SQL = """
SELECT d.id, d.period, p.name AS enterprise, d.profile_id AS enterprise_id, d.email, d.state,
       d.items, d.changed, d.subject, d.attempts, d.created_at, d.sent_at, d.error
FROM deliveries AS d
LEFT JOIN profiles AS p ON p.id = d.profile_id
WHERE (:state = '' OR d.state = :state) AND (:period = '' OR d.period = :period)
ORDER BY d.id DESC
LIMIT 1000
""".strip()

UNMATCHED_TENDERS_SQL = f"""
SELECT n.id, n.title, n.buyer_name AS buyer, n.deadline, n.published,
       n.record ->> '$.cpv[0]' AS main_cpv,
       n.record ->> '$.value.amount' AS value, n.record ->> '$.value.currency' AS currency,
       (SELECT count(*) FROM lots WHERE lots.notice_id = n.id) AS lots,
       n.record ->> '$.url' AS url
FROM notices AS n
WHERE {_OPEN}
  AND (:buyer = '' OR tm_fold(n.buyer_name) LIKE '%' || tm_fold(:buyer) || '%')
  AND NOT EXISTS (SELECT 1 FROM matches AS m WHERE m.notice_id = n.id)
  AND NOT EXISTS (SELECT 1 FROM delivery_items AS di WHERE di.notice_id = n.id)
ORDER BY n.deadline IS NULL, n.deadline, n.id
LIMIT 1000
""".strip()

EXPIRING_AGREEMENTS_SQL = """
SELECT n.id, n.title, n.buyer_name AS buyer, n.record ->> '$.supplier' AS supplier, n.valid_until,
       n.record ->> '$.cpv[0]' AS main_cpv,
       n.record ->> '$.value.amount' AS value, n.record ->> '$.value.currency' AS currency,
       (SELECT count(*) FROM matches AS m WHERE m.notice_id = n.id) AS matched_enterprises,
       n.record ->> '$.url' AS url
FROM notices AS n
WHERE n.kind = 'agreement' AND n.status != 'cancelled'
  AND n.valid_until >= date('now') AND n.valid_until <= date('now', '+12 months')
  AND (:buyer = '' OR tm_fold(n.buyer_name) LIKE '%' || tm_fold(:buyer) || '%')
ORDER BY n.valid_until, n.id
LIMIT 1000
""".strip()

RUN_HISTORY_SQL = """
SELECT id, job, source, started, finished,
       round((julianday(finished) - julianday(started)) * 86400, 1) AS seconds, outcome,
       stats ->> '$.fetched' AS fetched, stats ->> '$.new' AS new, stats ->> '$.updated' AS updated,
       stats ->> '$.rejected' AS rejected, stats ->> '$.matches' AS matches, stats ->> '$.sent' AS sent,
       stats ->> '$.failed' AS failed, stats ->> '$.pending' AS pending, error
FROM runs
WHERE (:job = '' OR job = :job OR job || ':' || coalesce(source, '') = :job) AND (:outcome = '' OR outcome = :outcome)
ORDER BY id DESC
LIMIT 1000
""".strip()

CANNED_QUERIES: dict[str, dict[str, str | bool]] = {
    "match_log": {
        "title": "Matches this week, by enterprise",
        "description": "Which enterprise was matched to which notice this week (since Monday 00:00), its rank"
                       " among that enterprise's matches, the score (0-100) and the reasons, and whether a digest"
                       " told it (1 = a sent digest did). Give an enterprise's id or part of its name, or leave it"
                       " empty for all. A notice id opens who was told about that notice.",
        "sql": MATCH_LOG_SQL,
        "hide_sql": True,
    },
    "notice_recipients": {
        "title": "Who was told about a notice, and why",
        "description": "Every enterprise a digest told about this notice (address, week, sent or failed) with"
                       " the reasons the digest gave; enterprises matched but not told yet are listed too."
                       " Give the notice id, e.g. ted:123456-2026.",
        "sql": NOTICE_RECIPIENTS_SQL,
        "hide_sql": True,
    },
    "deliveries": {
        "title": "Digest e-mails: sent, pending and failed",
        "description": "One row per weekly e-mail. state: sent, pending (not yet accepted by the mail server)"
                       " or failed (refused for good; see error). Filter by state or ISO week (2026-W48).",
        "sql": DELIVERIES_SQL,
        "hide_sql": True,
    },
    "open_tenders_without_match": {
        "title": "Open tenders that reached no enterprise",
        "description": "Tenders open for bids now that no enterprise was matched to or told about: candidates"
                       " to market to social-economy enterprises directly. Filter by buyer (part of the name).",
        "sql": UNMATCHED_TENDERS_SQL,
        "hide_sql": True,
    },
    "agreements_expiring": {
        "title": "Supplier agreements ending within 12 months",
        "description": "Agreements whose end date falls in the next 12 months: a new tender is likely before"
                       " then. Filter by buyer (part of the name).",
        "sql": EXPIRING_AGREEMENTS_SQL,
        "hide_sql": True,
    },
    "run_history": {
        "title": "Crawl and job history",
        "description": "Every crawl, ingest, match and digest run, newest first, with its outcome and counts."
                       " job: crawl, crawl:<source>, match, digest; outcome: ok, partial, failed, interrupted.",
        "sql": RUN_HISTORY_SQL,
        "hide_sql": True,
    },
}

TABLES: dict[str, dict[str, Any]] = {
    "notices": {
        "description": "One row per tender or supplier agreement after de-duplication. Search finds words inside"
                       " compounds (\"rengøring\" finds \"vinduesrengøring\"); give at least 3 letters.",
        "label_column": "title",
        "sort_desc": "published",
        "facets": ["kind", "status", "stage"],
    },
    "lots": {"description": "The lots of each notice (a notice not divided into lots has one)."},
    "matches": {
        "description": "The match log as the last match run left it: each enterprise's current matches.",
        "sort": "profile_id",
        "facets": ["profile_id", "kind"],
    },
    "profiles": {
        "description": "The enterprises as the last match read their profile files. emails is personal data.",
        "label_column": "name",
    },
    "deliveries": {
        "description": "Digest e-mails. message holds a pending e-mail until the server accepts it.",
        "sort_desc": "id",
        "facets": ["state", "period"],
    },
    "delivery_items": {"description": "What each digest told: one row per notice in a digest."},
    "unsubscribes": {"description": "Addresses that unsubscribed from an enterprise's digests, when and how."},
    "runs": {"description": "Every run of a job.", "sort_desc": "id", "facets": ["job", "outcome"]},
    "rejections": {"description": "Documents a run rejected, and why.", "sort_desc": "id"},
    "raw_documents": {"description": "Every fetched document, compressed (content is Zstandard)."},
    "notice_versions": {"description": "The history of each notice: what changed, when, from which document."},
    "notice_sources": {"description": "Which sources delivered each notice."},
    # The store's machinery: not for reading.
    "_migrations": {"hidden": True},
    "notice_keys": {"hidden": True},
    "worker_jobs": {"hidden": True},
    "worker_state": {"hidden": True},
}


def metadata(*, database: str, title: str, password_hash_env: str | None) -> dict[str, Any]:
    """Datasette metadata for the store served as ``database``.

    With ``password_hash_env`` (the name of the variable holding the staff password's
    hash) only the actor ``staff`` may see any page: the store holds e-mail addresses.
    """
    links = "".join(f'<li><a href="/{database}/{name}">{escape(str(query["title"]))}</a></li>'
                    for name, query in CANNED_QUERIES.items())
    meta: dict[str, Any] = {
        "title": title,
        "description_html": "<p>Tenders and supplier agreements, which social-economy enterprises they were"
                            " matched to and told about, and why. Read-only.</p>"
                            f'<ul>{links}<li><a href="/{database}/notices">Search the notices</a></li></ul>',
        "databases": {database: {"queries": CANNED_QUERIES, "tables": TABLES}},
    }
    if password_hash_env:
        meta["allow"] = {"id": "staff"}
        meta["plugins"] = {"datasette-auth-passwords": {"staff_password_hash": {"$env": password_hash_env}}}
    return meta
