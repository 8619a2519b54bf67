"""What procurement staff read in `tendermatch serve`, over a store filled by a real crawl,
match and digest run (tests/web/served.py):

- each canned query answers with the rows the crawl, match and digest left, and its filters
  narrow them as a user types them; each query's page shows its title;
- the notices search finds a word inside a Danish compound and in descriptions;
- CSV and JSON exports carry the same rows, and ``_dl=1`` downloads;
- the store cannot be changed through the web view: SQL that writes and POSTs are refused
  and the file's rows stay as they were, while a read-only SELECT works;
- the front page and the database page lead to the canned queries; the store's machinery
  tables are not listed.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tendermatch.web.queries import CANNED_QUERIES
from tests.web.served import AGREEMENTS, TENDERS

DB = "/store"
HIDDEN = ("_migrations", "worker_jobs", "worker_state", "notice_keys")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def get(served, path: str) -> tuple[int, dict[str, str], str]:
    try:
        with _OPENER.open(served.url + path, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode("utf-8", errors="replace")


def post(served, path: str, form: dict[str, str]) -> int:
    request = urllib.request.Request(served.url + path, data=urllib.parse.urlencode(form).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with _OPENER.open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def rows(served, name: str, **params: str) -> list[dict]:
    status, _, body = get(served, f"{DB}/{name}.json?{urllib.parse.urlencode({**params, '_shape': 'array'})}")
    assert status == 200, body[:500]
    return json.loads(body)


def snapshot(served) -> dict[str, object]:
    """What a write would change, read straight from the file."""
    with sqlite3.connect(f"file:{served.store}?mode=ro", uri=True) as db:
        counts = {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in ("matches", "notices", "deliveries", "delivery_items", "unsubscribes")}
        titles = db.execute("SELECT group_concat(title, '|') FROM (SELECT title FROM notices ORDER BY id)").fetchone()
        schema = db.execute("SELECT group_concat(sql, ';') FROM sqlite_master").fetchone()
    db.close()
    return {"counts": counts, "titles": titles, "schema": schema}


OPEN_TENDERS = [tender for tender in sorted(TENDERS, key=lambda t: t.days_left) if tender.days_left > 0]
MATCHED = {"rent-fokus": TENDERS[0], "maaltidsvaerkstedet": TENDERS[1]}


# -- the canned queries --------------------------------------------------------------------

def test_match_log_shows_this_weeks_matches_with_readable_reasons(served):
    log = rows(served, "match_log", enterprise="")
    assert {row["enterprise_id"]: row["title"] for row in log} == {key: t.title for key, t in MATCHED.items()}
    rent = next(row for row in log if row["enterprise_id"] == "rent-fokus")
    assert (rent["enterprise"], rent["buyer"], rent["rank"], rent["told"]) == ("RentFokus", TENDERS[0].buyer, 1, 1)
    assert all(row["rank"] == 1 and row["told"] == 1 for row in log)
    assert "; " in rent["reasons"] and not rent["reasons"].startswith("[")  # a sentence list, not JSON
    assert [row["enterprise_id"] for row in rows(served, "match_log", enterprise="Rent")] == ["rent-fokus"]
    assert [row["enterprise_id"] for row in rows(served, "match_log", enterprise="maaltidsvaerkstedet")] \
        == ["maaltidsvaerkstedet"]
    for typed in ("Måltid", "MÅLTIDSVÆRK"):  # Danish letters in any case
        assert [row["enterprise"] for row in rows(served, "match_log", enterprise=typed)] == ["Måltidsværkstedet"]
    assert rows(served, "match_log", enterprise="ingen-saadan-virksomhed") == []


def test_open_tenders_without_match_leaves_out_matched_and_closed_ones(served):
    expected = [t.title for t in OPEN_TENDERS if t not in MATCHED.values()]
    assert len(expected) == 2
    assert [row["title"] for row in rows(served, "open_tenders_without_match", buyer="")] == expected  # by deadline
    holbaek = [t.title for t in OPEN_TENDERS if t not in MATCHED.values() and t.buyer == "Holbæk Kommune"]
    for typed in ("Holbæk", "holbæk", "HOLBÆK", "Holbæk Kommune"):
        assert [row["title"] for row in rows(served, "open_tenders_without_match", buyer=typed)] == holbaek, typed
    assert rows(served, "open_tenders_without_match", buyer="Odense") == []


def test_agreements_expiring_lists_only_those_ending_within_12_months(served):
    ending = [a for a in AGREEMENTS if 0 <= a.days_left <= 365]
    assert len(ending) == 1
    found = rows(served, "agreements_expiring", buyer="")
    assert [(row["title"], row["supplier"], row["buyer"]) for row in found] \
        == [(a.title, a.supplier, a.buyer) for a in ending]
    assert [row["title"] for row in rows(served, "agreements_expiring", buyer="København")] == [ending[0].title]
    assert rows(served, "agreements_expiring", buyer="Frederiksberg") == []  # its agreement already ended


def test_deliveries_lists_each_digest_sent(served):
    sent = rows(served, "deliveries", state="", period="")
    assert sorted(row["email"] for row in sent) == sorted(str(m["To"]) for m in served.messages)
    assert sorted(row["enterprise"] for row in sent) == ["Måltidsværkstedet", "Måltidsværkstedet", "RentFokus"]
    assert {row["state"] for row in sent} == {"sent"}
    assert [row["id"] for row in sent] == sorted((row["id"] for row in sent), reverse=True)
    assert len(rows(served, "deliveries", state="sent", period="")) == 3
    assert rows(served, "deliveries", state="failed", period="") == []
    period = sent[0]["period"]
    assert re.fullmatch(r"\d{4}-W\d{2}", period)
    assert len(rows(served, "deliveries", state="", period=period)) == 3
    assert rows(served, "deliveries", state="", period="1999-W01") == []


def test_notice_recipients_shows_who_was_told_and_the_reasons_the_digest_gave(served):
    notice = next(row["notice_id"] for row in rows(served, "match_log", enterprise="rent-fokus"))
    told = rows(served, "notice_recipients", notice=notice)
    assert [(r["title"], r["enterprise"], r["email"], r["state"]) for r in told] \
        == [(TENDERS[0].title, "RentFokus", "kontakt@rentfokus.example", "sent")]
    reasons = told[0]["reasons"].split("; ")
    assert any("søgeord" in reason for reason in reasons), reasons  # Danish, as the profile's digest is
    message = next(m for m in served.messages if str(m["To"]) == "kontakt@rentfokus.example")
    text = " ".join(message.get_body(preferencelist=("plain",)).get_content().split())
    for reason in reasons:
        assert " ".join(reason.split()) in text, reason
    unmatched = next(row["id"] for row in rows(served, "open_tenders_without_match", buyer=""))
    assert rows(served, "notice_recipients", notice=unmatched) == []


def test_run_history_lists_each_run_newest_first(served):
    runs = rows(served, "run_history", job="", outcome="")
    assert [row["id"] for row in runs] == sorted((row["id"] for row in runs), reverse=True)
    assert [(row["job"], row["source"]) for row in runs[:2]] == [("digest", None), ("match", None)]
    assert sorted((row["job"], row["source"]) for row in runs[2:]) == [("crawl", "kk-aftaler"), ("crawl", "sjaelland")]
    assert {row["outcome"] for row in runs} == {"ok"}
    sjaelland = rows(served, "run_history", job="crawl:sjaelland", outcome="")
    assert [(row["source"], row["new"]) for row in sjaelland] == [("sjaelland", len(TENDERS))]
    assert [row["new"] for row in rows(served, "run_history", job="crawl:kk-aftaler", outcome="")] == [len(AGREEMENTS)]
    assert len(rows(served, "run_history", job="crawl", outcome="")) == 2
    assert [row["matches"] for row in rows(served, "run_history", job="match", outcome="ok")] == [len(MATCHED)]
    assert rows(served, "run_history", job="", outcome="failed") == []


@pytest.mark.parametrize("name", sorted(CANNED_QUERIES))
def test_each_query_page_answers_with_its_title(served, name):
    status, _, body = get(served, f"{DB}/{name}")
    assert status == 200, body[:500]
    assert re.search(r"<h1[^>]*>\s*" + re.escape(html.escape(CANNED_QUERIES[name]["title"])) + r"\s*</h1>", body)


# -- search ----------------------------------------------------------------------------------

def _containing(word: str) -> set[str]:
    return ({t.title for t in TENDERS if word in f"{t.title} {t.description}".lower()}
            | {a.title for a in AGREEMENTS if word in a.title.lower()})


@pytest.mark.parametrize("word", ["rengøring", "pleje", "bekæmpelse", "kuverter", "vinduespudsning", "tandlægeklinik"])
def test_search_finds_words_inside_compounds_and_descriptions(served, word):
    found = {row["title"] for row in rows(served, "notices", _search=word, _col="title")}
    assert found == _containing(word)
    assert bool(found) == (word != "tandlægeklinik")


# -- export ----------------------------------------------------------------------------------

def test_csv_of_a_query_has_the_same_rows_as_its_json(served):
    as_json = rows(served, "match_log", enterprise="")
    status, headers, body = get(served, f"{DB}/match_log.csv?enterprise=")
    assert status == 200
    table = list(csv.reader(io.StringIO(body)))
    assert table[0] == list(as_json[0])
    assert [dict(zip(table[0], line, strict=True)) for line in table[1:]] \
        == [{key: "" if value is None else str(value) for key, value in row.items()} for row in as_json]
    status, headers, download = get(served, f"{DB}/match_log.csv?enterprise=&_dl=1")
    assert status == 200 and download == body
    assert headers["content-disposition"].startswith("attachment") and "match_log.csv" in headers["content-disposition"]


def test_json_export_of_a_table(served):
    notices = rows(served, "notices", _col="title", _size="max")
    assert sorted(row["title"] for row in notices) == sorted([t.title for t in TENDERS] + [a.title for a in AGREEMENTS])


# -- read-only ---------------------------------------------------------------------------------

@pytest.mark.parametrize("sql", [
    "DELETE FROM matches", "UPDATE notices SET title = 'x'",
    "INSERT INTO unsubscribes (profile_id, email) VALUES ('rent-fokus', 'x@example.org')", "DROP TABLE deliveries",
    "PRAGMA writable_schema=1", "ATTACH DATABASE '{folder}/attached.db' AS other", "SELECT 1; DELETE FROM matches",
    "WITH x AS (SELECT 1) DELETE FROM matches",
])
def test_sql_that_writes_is_refused(served, sql):
    before = snapshot(served)
    sql = sql.format(folder=served.folder)
    status, _, body = get(served, f"{DB}.json?{urllib.parse.urlencode({'sql': sql})}")
    assert 400 <= status < 500, (status, body[:300])
    assert snapshot(served) == before
    assert not (served.folder / "attached.db").exists()


@pytest.mark.parametrize("path, form", [
    ("/matches", {"profile_id": "rent-fokus"}), ("/match_log?enterprise=", {"enterprise": "x"}),
    ("", {"sql": "DELETE FROM matches"}),
])
def test_posts_change_nothing(served, path, form):
    before = snapshot(served)
    assert post(served, DB + path, form) == 405  # refused at the door, not a 500 from Datasette
    assert snapshot(served) == before


def test_read_only_sql_works(served):
    query = urllib.parse.urlencode({"sql": "SELECT count(*) AS n FROM matches", "_shape": "array"})
    status, _, body = get(served, f"{DB}.json?{query}")
    assert status == 200
    assert json.loads(body) == [{"n": snapshot(served)["counts"]["matches"]}]


# -- front page and database page -----------------------------------------------------------------

def test_database_page_lists_the_queries_and_not_the_machinery(served):
    status, _, front = get(served, "/datasette")  # Datasette's index: the console owns "/"
    assert status == 200 and f'href="{DB}"' in front
    status, _, page = get(served, DB)
    assert status == 200
    for name, query in CANNED_QUERIES.items():
        assert re.search(rf'<a href="{DB}/{name}"[^>]*>{re.escape(html.escape(query["title"]))}</a>', page), name
    for table in ("notices", "matches", "deliveries"):
        assert f'href="{DB}/{table}"' in page
    for table in HIDDEN:
        assert f'href="{DB}/{table}"' not in page and f'href="{DB}/{table}"' not in front, table
