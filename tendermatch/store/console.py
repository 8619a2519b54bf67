"""The staff console's reads: this week's numbers, the notice, enterprise, delivery and run
lists (filtered, one page at a time) and the facts of one notice or one enterprise.

Every list is index-backed and paged (``limit``/``offset``); a page's costly columns (JSON
read out of a notice's record) are read for the page's rows only, after the filter has
chosen them, so a page stays fast on a store of 50,000 notices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .connection import Connection, add_fold_function
from .runs import parsed_run

# A notice some enterprise was told about by a sent digest. CROSS JOIN fixes the order: from
# the notice's items (index on notice_id) to their delivery (primary key). Left to itself
# SQLite walked every sent delivery for each notice: 130 s for a list of 50,000 notices.
_REACHED = ("EXISTS (SELECT 1 FROM delivery_items AS di CROSS JOIN deliveries AS d ON d.id = di.delivery_id"
            " WHERE di.notice_id = n.id AND d.state = 'sent')")
_MATCHED = "EXISTS (SELECT 1 FROM matches AS m WHERE m.notice_id = n.id)"
# Open for bids on ``:today``: an active competition whose deadline has not passed (none counts
# as open). coalesce(), not "IS NULL OR": the OR sent SQLite through the deadline index to
# every row; this way it scans the covering idx_notices_console.
_OPEN = ("n.kind = 'tender' AND n.status = 'active' AND n.stage = 'competition'"
         " AND coalesce(n.deadline, '9999') >= :today")


# A notice's page lists at most this many recipients (and as many matched, not told): a
# page stays readable and fast; the Datasette query notice_recipients has them all.
RECIPIENTS_SHOWN = 1000


def fts_phrase(text: str) -> str:
    """``text`` as one FTS5 phrase (the trigram index finds it inside words)."""
    return '"' + text.replace('"', '""') + '"'


@dataclass
class NoticeFilter:
    """The notice list's filters; empty means "all". Dates are YYYY-MM-DD."""

    search: str = ""
    buyer: str = ""
    kind: str = ""
    stage: str = ""
    deadline_from: str = ""
    deadline_to: str = ""
    region: str = ""  # a NUTS code or its start (DK01)
    reached: str = ""  # "yes" | "no" | ""
    buyers: list[str] = field(default_factory=list)  # exact buyer names (case-blind), for "ikke nået"


class ConsoleReads(Connection):
    """Read-only queries behind the console's pages."""

    def _console_functions(self) -> None:
        if not getattr(self, "_console_ready", False):
            add_fold_function(self.db.conn)
            self._console_ready = True

    # -- Oversigt ------------------------------------------------------------------------

    def console_overview(self, *, since: str) -> dict[str, Any]:
        """This week's numbers since ``since`` (a UTC timestamp) and each source's crawl health."""
        one = lambda sql, *params: self.db.execute(sql, params).fetchone()[0]  # noqa: E731
        states = {row[0]: row[1] for row in self.db.execute(
            "SELECT state, count(*) FROM deliveries WHERE created_at >= ? GROUP BY state", [since])}
        sources = list(self.db.query(
            "SELECT r.source, r.outcome, r.started, r.finished, r.error, r.stats,"
            " (SELECT max(g.started) FROM runs AS g WHERE g.source = r.source AND g.job = 'crawl'"
            "  AND g.outcome = 'ok') AS last_good"
            " FROM runs AS r WHERE r.id IN (SELECT max(id) FROM runs WHERE job = 'crawl' GROUP BY source)"
            " ORDER BY r.outcome = 'ok', r.source"))
        return {
            "new_notices": one("SELECT count(*) FROM notices WHERE first_seen >= ?", since),
            "matches": one("SELECT count(*) FROM matches WHERE matched_at >= ?", since),
            # Per enterprise, not count(DISTINCT) over the week's matches: that sorted 171,000 rows.
            "matched_enterprises": one("SELECT count(*) FROM profiles AS p WHERE EXISTS (SELECT 1 FROM matches AS m"
                                       " WHERE m.profile_id = p.id AND m.matched_at >= ?)", since),
            "sent": states.get("sent", 0), "pending": states.get("pending", 0), "failed": states.get("failed", 0),
            "enterprises": one("SELECT count(*) FROM profiles"),
            "without_match": one("SELECT count(*) FROM profiles AS p"
                                 " WHERE NOT EXISTS (SELECT 1 FROM matches AS m WHERE m.profile_id = p.id)"),
            "sources": sources,
        }

    # -- Udbud ---------------------------------------------------------------------------

    def _notice_where(self, filters: NoticeFilter, today: str) -> tuple[str, dict[str, Any]]:
        """The WHERE clause of a notice filter, cheapest tests first (SQLite tries them in order)."""
        self._console_functions()
        where, params = ["1 = 1"], {"today": today}
        if filters.search:
            where.append("n.rowid IN (SELECT rowid FROM notices_fts WHERE notices_fts MATCH :search)")
            params["search"] = fts_phrase(filters.search)
        for column in ("kind", "stage"):
            if getattr(filters, column):
                where.append(f"n.{column} = :{column}")
                params[column] = getattr(filters, column)
        if filters.deadline_from:
            where.append("n.deadline >= :deadline_from")
            params["deadline_from"] = filters.deadline_from
        if filters.deadline_to:
            where.append("n.deadline < date(:deadline_to, '+1 day')")
            params["deadline_to"] = filters.deadline_to
        if filters.buyer:
            # SQLite's LIKE ignores case in ASCII only: the lower- and upper-case spellings of the
            # words cover "holbæk" in "Holbæk Kommune" and in "HOLBÆK KOMMUNE" without a Python
            # call per row.
            where.append("(n.buyer_name LIKE :buyer_lower ESCAPE '\\' OR n.buyer_name LIKE :buyer_upper ESCAPE '\\')")
            escaped = filters.buyer.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params |= {"buyer_lower": f"%{escaped.casefold()}%", "buyer_upper": f"%{escaped.upper()}%"}
        if filters.region:
            # Read from the small (nuts, notice_id) index, never the lots' descriptions.
            where.append("n.id IN (SELECT l.notice_id FROM lots AS l INDEXED BY idx_lots_nuts"
                         " WHERE instr(l.nuts, '\"' || :region) > 0)")
            params["region"] = filters.region.upper()
        if filters.reached == "yes":
            where.append(_REACHED)
        elif filters.reached == "no":
            where.append(f"NOT {_REACHED}")
        if filters.buyers:
            where.append("tm_fold(n.buyer_name) IN (SELECT value FROM json_each(:buyers))")
            params["buyers"] = json.dumps([name.casefold() for name in filters.buyers])
        return " AND ".join(where), params

    def console_notices(self, filters: NoticeFilter, *, today: str, limit: int, offset: int = 0,
                        order: str = "published") -> tuple[list[dict[str, Any]], int]:
        """One page of notices (newest published first, or by deadline) and how many match the filters."""
        where, params = self._notice_where(filters, today)
        order_by = {"published": "n.published DESC, n.id", "deadline": "n.deadline IS NULL, n.deadline, n.id"}[order]
        # The count without sorting, the page's ids by the index: two cheap passes, where one
        # windowed pass (count(*) OVER ()) would sort every row that passes the filter.
        total = self.db.execute(f"SELECT count(*) FROM notices AS n WHERE {where}", params).fetchone()[0]
        found = self.db.execute(f"SELECT n.id FROM notices AS n WHERE {where} ORDER BY {order_by}"
                                " LIMIT :limit OFFSET :offset",
                                {**params, "limit": int(limit), "offset": int(offset)}).fetchall()
        rows = list(self.db.query(
            "WITH page AS (SELECT value AS id FROM json_each(:ids))"
            " SELECT n.id, n.title, n.record ->> '$.titles.da' AS title_da,"
            " n.record ->> '$.language' AS language, n.buyer_name, n.kind, n.stage, n.status,"
            " n.deadline, n.published, n.valid_until, n.record ->> '$.value.amount' AS value_amount,"
            " n.record ->> '$.value.currency' AS value_currency,"
            " (SELECT count(*) FROM matches AS m WHERE m.notice_id = n.id) AS matched,"
            " (SELECT count(DISTINCT di.profile_id) FROM delivery_items AS di CROSS JOIN deliveries AS d"
            "  ON d.id = di.delivery_id WHERE di.notice_id = n.id AND d.state = 'sent') AS told"
            f" FROM page JOIN notices AS n ON n.id = page.id ORDER BY {order_by}",
            {"ids": json.dumps([row[0] for row in found])}))
        return rows, total

    def console_notice(self, notice_id: str) -> dict[str, Any] | None:
        """One notice: its record, lots, sources, versions, and who was told or matched, with
        the reasons a digest gave (as stored) or the match log's facts."""
        rows = list(self.db.query("SELECT * FROM notices WHERE id = ?", [notice_id]))
        if not rows:
            return None
        notice = rows[0]
        notice["record"] = json.loads(notice["record"] or "{}")
        notice["sources"] = list(self.db.query(
            "SELECT source, url, first_seen, last_seen FROM notice_sources WHERE notice_id = ? ORDER BY first_seen",
            [notice_id]))
        notice["versions"] = [{**row, "fields": json.loads(row["fields"] or "[]")} for row in self.db.query(
            "SELECT version, at, source, change, fields, deadline,"
            " lag(deadline) OVER (ORDER BY version, id) AS previous_deadline"
            " FROM notice_versions WHERE notice_id = ? ORDER BY version, id", [notice_id])]
        notice["told"] = [{**row, "reasons": json.loads(row["reasons"] or "[]"),
                           "facts": json.loads(row["facts"] or "{}")} for row in self.db.query(
            "SELECT di.profile_id, p.name AS enterprise, d.id AS delivery_id, d.email, d.period, d.state, d.sent_at,"
            " d.created_at, d.language, di.section, di.rank, di.deadline AS told_deadline, di.reasons, m.facts"
            " FROM delivery_items AS di CROSS JOIN deliveries AS d ON d.id = di.delivery_id"
            " LEFT JOIN profiles AS p ON p.id = di.profile_id"
            " LEFT JOIN matches AS m ON m.profile_id = di.profile_id AND m.notice_id = di.notice_id"
            " WHERE di.notice_id = ? ORDER BY d.created_at, p.name, d.email LIMIT ?", [notice_id, RECIPIENTS_SHOWN])]
        notice["matched_untold"] = [{**row, "reasons": json.loads(row["reasons"] or "[]"),
                                     "facts": json.loads(row["facts"] or "{}")} for row in self.db.query(
            "SELECT m.profile_id, p.name AS enterprise, p.language, m.rank, m.score, m.matched_at, m.reasons, m.facts"
            " FROM matches AS m LEFT JOIN profiles AS p ON p.id = m.profile_id WHERE m.notice_id = ?"
            " AND NOT EXISTS (SELECT 1 FROM delivery_items AS di WHERE di.notice_id = m.notice_id"
            " AND di.profile_id = m.profile_id) ORDER BY p.name LIMIT ?", [notice_id, RECIPIENTS_SHOWN])]
        return notice

    # -- Virksomheder --------------------------------------------------------------------

    def console_enterprises(self, *, search: str, without_match: bool = False, limit: int,
                            offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """One page of enterprises by name, with their match, digest and unsubscribe counts."""
        self._console_functions()
        where = "1 = 1"
        params: dict[str, Any] = {"limit": int(limit), "offset": int(offset)}
        if search:
            where += " AND (tm_fold(p.name) LIKE '%' || :search || '%' OR p.id = :exact)"
            params |= {"search": search.casefold(), "exact": search}
        if without_match:
            where += " AND NOT EXISTS (SELECT 1 FROM matches AS m WHERE m.profile_id = p.id)"
        total = self.db.execute(f"SELECT count(*) FROM profiles AS p WHERE {where}", params).fetchone()[0]
        # The page's ids first, then the counts for those rows only.
        rows = list(self.db.query(
            f"WITH page AS (SELECT p.id, tm_fold(p.name) AS folded FROM profiles AS p WHERE {where}"
            " ORDER BY folded, p.id LIMIT :limit OFFSET :offset)"
            " SELECT p.id, p.name, p.emails, p.language, p.regions, p.keywords, p.max_value,"
            " (SELECT count(*) FROM matches AS m WHERE m.profile_id = p.id) AS matches,"
            " (SELECT count(*) FROM deliveries AS d WHERE d.profile_id = p.id AND d.state = 'sent') AS sent,"
            " (SELECT max(d.sent_at) FROM deliveries AS d WHERE d.profile_id = p.id) AS last_sent,"
            " (SELECT count(*) FROM unsubscribes AS u WHERE u.profile_id = p.id) AS unsubscribed"
            " FROM page JOIN profiles AS p ON p.id = page.id ORDER BY page.folded, p.id", params))
        for row in rows:
            for column in ("emails", "regions", "keywords"):
                row[column] = json.loads(row[column] or "[]")
        return rows, total

    def console_enterprise(self, profile_id: str, *, since: str) -> dict[str, Any] | None:
        """One enterprise: its profile, current matches, the digests since ``since`` with
        what each told and why, and its unsubscribes."""
        rows = list(self.db.query("SELECT * FROM profiles WHERE id = ?", [profile_id]))
        if not rows:
            return None
        profile = rows[0]
        for column in ("emails", "keywords", "cpv", "regions", "reserved_eligible"):
            profile[column] = json.loads(profile[column] or "[]")
        profile["matches"] = [{**row, "reasons": json.loads(row["reasons"] or "[]"),
                               "facts": json.loads(row["facts"] or "{}")} for row in self.db.query(
            "SELECT m.notice_id, n.title, n.buyer_name, m.rank, m.score, m.kind, m.deadline, m.expires, m.matched_at,"
            " m.reasons, m.facts FROM matches AS m LEFT JOIN notices AS n ON n.id = m.notice_id"
            " WHERE m.profile_id = ? ORDER BY m.rank LIMIT 200", [profile_id])]
        deliveries = list(self.db.query(
            "SELECT id, email, period, language, subject, items, changed, state, created_at, sent_at, error"
            " FROM deliveries WHERE profile_id = ? AND created_at >= ? ORDER BY id DESC LIMIT 200",
            [profile_id, since]))
        items: dict[int, list[dict[str, Any]]] = {}
        if deliveries:
            for row in self.db.query(
                    "SELECT di.delivery_id, di.notice_id, n.title, n.buyer_name, di.section, di.rank, di.deadline,"
                    " di.reasons, m.facts FROM delivery_items AS di LEFT JOIN notices AS n ON n.id = di.notice_id"
                    " LEFT JOIN matches AS m ON m.profile_id = di.profile_id AND m.notice_id = di.notice_id"
                    " WHERE di.delivery_id IN (SELECT value FROM json_each(?)) ORDER BY di.section, di.rank",
                    [json.dumps([d["id"] for d in deliveries])]):
                row["reasons"] = json.loads(row["reasons"] or "[]")
                row["facts"] = json.loads(row["facts"] or "{}")
                items.setdefault(row["delivery_id"], []).append(row)
        for delivery in deliveries:
            delivery["told"] = items.get(delivery["id"], [])
        profile["deliveries"] = deliveries
        profile["unsubscribes"] = list(self.db.query(
            "SELECT email, at, via FROM unsubscribes WHERE profile_id = ? ORDER BY at DESC", [profile_id]))
        return profile

    # -- Udsendelser og Kørsler ----------------------------------------------------------

    def console_deliveries(self, *, state: str, period: str, limit: int,
                           offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Digest e-mails, failed first, then pending, then sent; newest first within each."""
        where, params = "1 = 1", {"limit": int(limit), "offset": int(offset), "state": state, "period": period}
        if state:
            where += " AND d.state = :state"
        if period:
            where += " AND d.period = :period"
        total = self.db.execute(f"SELECT count(*) FROM deliveries AS d WHERE {where}", params).fetchone()[0]
        rows = list(self.db.query(
            "SELECT d.id, d.period, d.profile_id, p.name AS enterprise, d.email, d.state, d.items, d.changed,"
            " d.subject, d.attempts, d.created_at, d.sent_at, d.error FROM deliveries AS d"
            f" LEFT JOIN profiles AS p ON p.id = d.profile_id WHERE {where}"
            " ORDER BY CASE d.state WHEN 'failed' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END, d.id DESC"
            " LIMIT :limit OFFSET :offset", params))
        return rows, total

    def console_runs(self, *, job: str, outcome: str, limit: int, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Job runs, those that failed (or were partial or interrupted) first, newest first within each."""
        where, params = "1 = 1", {"limit": int(limit), "offset": int(offset), "job": job, "outcome": outcome}
        if job:
            where += " AND job = :job"
        if outcome:
            where += " AND outcome = :outcome"
        total = self.db.execute(f"SELECT count(*) FROM runs WHERE {where}", params).fetchone()[0]
        rows = [parsed_run(row) for row in self.db.query(
            "SELECT id, job, source, started, finished, outcome, stats, error FROM runs"
            f" WHERE {where} ORDER BY CASE outcome WHEN 'failed' THEN 0 WHEN 'interrupted' THEN 1"
            " WHEN 'partial' THEN 2 WHEN 'running' THEN 3 ELSE 4 END, id DESC LIMIT :limit OFFSET :offset", params)]
        return rows, total

    # -- Ikke nået -----------------------------------------------------------------------

    def console_unreached(self, *, buyers: list[str], today: str, limit: int,
                          offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Open tenders of ``buyers`` (all buyers when empty) that no enterprise was matched
        to or told about, soonest deadline first, each with its lots' CPV codes and values."""
        where, params = self._notice_where(NoticeFilter(buyers=buyers), today)
        where += f" AND {_OPEN} AND NOT {_MATCHED}" \
                 " AND NOT EXISTS (SELECT 1 FROM delivery_items AS di WHERE di.notice_id = n.id)"
        total = self.db.execute(f"SELECT count(*) FROM notices AS n WHERE {where}", params).fetchone()[0]
        rows = list(self.db.query(
            f"WITH page AS (SELECT n.id FROM notices AS n WHERE {where}"
            " ORDER BY n.deadline IS NULL, n.deadline, n.id LIMIT :limit OFFSET :offset)"
            " SELECT n.id, n.title, n.record ->> '$.titles.da' AS title_da,"
            " n.record ->> '$.language' AS language, n.buyer_name, n.deadline, n.published,"
            " n.record ->> '$.value.amount' AS value_amount, n.record ->> '$.value.currency' AS value_currency,"
            " (SELECT json_group_array(json(l.cpv)) FROM lots AS l WHERE l.notice_id = n.id) AS lot_cpv,"
            " (SELECT json_group_array(json(l.nuts)) FROM lots AS l WHERE l.notice_id = n.id) AS lot_nuts,"
            " (SELECT json_group_array(l.value_amount) FROM lots AS l WHERE l.notice_id = n.id) AS lot_values"
            " FROM page JOIN notices AS n ON n.id = page.id ORDER BY n.deadline IS NULL, n.deadline, n.id",
            {**params, "limit": int(limit), "offset": int(offset)}))
        for row in rows:
            row["cpv"] = sorted({code for codes in json.loads(row.pop("lot_cpv") or "[]") for code in codes or []})
            row["nuts"] = sorted({code for codes in json.loads(row.pop("lot_nuts") or "[]") for code in codes or []})
            row["lot_values"] = [value for value in json.loads(row.pop("lot_values") or "[]") if value is not None]
        return rows, total

    def console_profiles_version(self) -> tuple[int, str]:
        """(count, newest updated_at) of the profiles: changes when a match run saves them."""
        count, newest = self.db.execute("SELECT count(*), max(updated_at) FROM profiles").fetchone()
        return int(count), str(newest or "")

    def console_profiles_for_near_misses(self) -> list[dict[str, Any]]:
        """Every enterprise's id, name, CPV codes, regions and value limit (for near misses)."""
        rows = list(self.db.query("SELECT id, name, cpv, regions, max_value FROM profiles ORDER BY name LIMIT 20000"))
        for row in rows:
            row["cpv"] = json.loads(row["cpv"] or "[]")
            row["regions"] = json.loads(row["regions"] or "[]")
        return rows
