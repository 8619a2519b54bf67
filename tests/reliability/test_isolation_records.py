"""One record never costs another: impossible dates (year 9999 or 0001, a +14:00 offset),
lone surrogates, NUL and bidi-override characters in ids, and a notice the store cannot take,
each in one record among good ones. Through `tendermatch ingest` and `tendermatch crawl`
(a listing page on a local HTTP server): every good record of the same document and run is
stored, the bad one costs only itself, no traceback reaches the operator and no run is left
`running`."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tendermatch.crawler.ingest import NoticeIngester
from tendermatch.crawler.items import Document
from tendermatch.crawler.prepare import prepare_document
from tendermatch.store import Store
from tests.conftest import ROOT, SAMPLE, run_cli
from tests.reliability.helpers import OCDS_BASE, Reply, Site, newest_runs, source, stored, write_digest_config

pytestmark = pytest.mark.slow

TED_FILES = sorted((SAMPLE / "ted-dk").glob("*.xml"))
UNWANTED_IN_IDS = ("\x00", "\u202e", "\u202d", "\u2066", "\ufeff")


def ted_with_deadline(path: Path, day: str, time: str) -> bytes:
    """A real TED notice whose tender deadline is ``day`` (YYYY-MM-DD) at ``time``."""
    content = path.read_text(encoding="utf-8")
    start = content.index("<DATE_RECEIPT_TENDERS>")
    end = content.index("</TIME_RECEIPT_TENDERS>")
    replaced = f"<DATE_RECEIPT_TENDERS>{day}</DATE_RECEIPT_TENDERS>\n<TIME_RECEIPT_TENDERS>{time}"
    content = content[:start] + replaced + content[end:]
    if "<DT_DATE_FOR_SUBMISSION>" in content:  # the coded copy of the deadline says the same
        start, end = content.index("<DT_DATE_FOR_SUBMISSION>"), content.index("</DT_DATE_FOR_SUBMISSION>")
        content = f"{content[:start]}<DT_DATE_FOR_SUBMISSION>{day.replace('-', '')} {time[:5]}{content[end:]}"
    return content.encode("utf-8")


def ocds_lines(changes: dict[int, dict[str, Any]]) -> tuple[str, list[str]]:
    """The real Sell2Wales releases as JSON lines, release ``i`` updated with ``changes[i]``
    (a dotted key sets inside ``tender``); and the ocids of the releases left unchanged."""
    releases = [json.loads(line) for line in OCDS_BASE.read_text(encoding="utf-8").splitlines() if line.strip()]
    good = []
    for index, release in enumerate(releases):
        for key, value in changes.get(index, {}).items():
            if key.startswith("tender."):
                release.setdefault("tender", {})[key.split(".", 2)[1]] = value
            else:
                release[key] = value
        if index not in changes:
            good.append(release["ocid"])
    # ensure_ascii: a lone surrogate travels as the JSON escape "\ud800", as hostile JSON has it
    return "\n".join(json.dumps(release) for release in releases) + "\n", good


def stored_ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as connection:
        return {row[0] for row in connection.execute("SELECT id FROM notices")}


def runs_of(db: Path) -> list[dict[str, Any]]:
    return json.loads(run_cli("--db", str(db), "runs", "--format", "json", check=True).stdout)


# --------------------------------------------------------------------------- 1. impossible dates


def test_impossible_dates_in_one_notice_cost_nothing_else_of_the_ingest(tmp_path):
    folder = tmp_path / "notices"
    folder.mkdir()
    for path in TED_FILES:
        shutil.copy(path, folder / path.name)
    with_deadline = [path for path in TED_FILES if b"<DATE_RECEIPT_TENDERS>" in path.read_bytes()]
    assert len(with_deadline) >= 3
    bad = {with_deadline[0]: ("9999-12-31", "23:30+14:00"), with_deadline[1]: ("0001-01-01", "00:15-14:00"),
           with_deadline[2]: ("2017-06-01", "12:00+14:00")}
    for path, (day, time) in bad.items():
        (folder / path.name).write_bytes(ted_with_deadline(path, day, time))
    text, good_ocids = ocds_lines({0: {"tender.tenderPeriod": {"endDate": "9999-12-31T23:59:59+14:00"}},
                                   1: {"tender.tenderPeriod": {"endDate": "0001-01-01T00:00:00-14:00"}},
                                   2: {"date": "0001-01-01T00:00:00+14:00"}})
    (folder / "wales.jsonl").write_text(text, encoding="utf-8")
    db = tmp_path / "store.db"

    result = run_cli("--db", str(db), "ingest", str(folder))

    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    ids = stored_ids(db)
    # every TED notice and every OCDS release is stored: the impossible date is no date
    assert len([i for i in ids if i.startswith("ted:")]) == len(TED_FILES), result.stdout + result.stderr
    assert {f"ocds:{ocid}" for ocid in good_ocids} <= ids
    assert len([i for i in ids if i.startswith("ocds:")]) == len(good_ocids) + 3
    records = {record["id"]: record for record in json.loads(
        run_cli("--db", str(db), "tenders", "--format", "json", check=True).stdout)}
    for path, (day, _time) in bad.items():
        record = next(r for r in records.values() if r["id"].startswith("ted:") and r["title"] and
                      path.stem.lstrip("0") in r["id"])
        if day.startswith(("9999", "0001")):
            assert record["deadline"] is None
        else:  # a real date with the largest offset there is is kept as it is
            assert record["deadline"] == f"{day}T12:00:00+14:00"
    run = runs_of(db)[0]
    assert run["outcome"] != "running" and run["finished"]


def test_a_listing_row_dated_31_12_9999_costs_no_other_row_on_any_crawl(tmp_path):
    rows = [("Rengøring af Roskilde Rådhus", "15.04.2026 kl. 12.00"), ("Vinduespudsning, skoler", "31.12.9999"),
            ("Kantinedrift på Jobcenter Roskilde", "01.01.0001 kl. 00.00"), ("Snerydning 2026/27", "20.04.2026")]
    cells = "".join(f'<tr class="udbud"><td class="titel"><a href="/udbud/{n}">{title}</a></td>'
                    f'<td class="frist">{deadline}</td><td class="udbyder">Roskilde Kommune</td></tr>'
                    for n, (title, deadline) in enumerate(rows, 1))
    page = (f'<!DOCTYPE html><html lang="da"><head><meta charset="utf-8"></head><body><table class="udbudsliste">'
            f"<tbody>{cells}</tbody></table></body></html>").encode()
    site = Site()
    site.routes["/udbud.html"] = Reply(page, "text/html; charset=utf-8")
    selectors = {"row": "table.udbudsliste tbody tr.udbud", "title": "td.titel", "link": "td.titel a",
                 "deadline": "td.frist", "buyer": "td.udbyder"}
    config = write_digest_config(tmp_path, sources=[source("roskilde", "html", url=f"{site.url}/udbud.html",
                                                    selectors=selectors)])
    try:
        first = run_cli("--config", str(config), "crawl")
        site.routes["/udbud.html"] = Reply(page.replace(b"Snerydning", b"Glatf\xc3\xb8rebek\xc3\xa6mpelse"),
                                           "text/html; charset=utf-8")
        second = run_cli("--config", str(config), "crawl")
    finally:
        site.close()
    for result in (first, second):
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stdout + result.stderr
    notices = {record["title"]: record for record in stored(config)}
    assert len(notices) == 4, notices.keys()  # the changed row updated its notice (same link)
    assert "Glatførebekæmpelse 2026/27" in notices
    assert notices["Rengøring af Roskilde Rådhus"]["deadline"] == "2026-04-15T12:00:00"
    assert notices["Vinduespudsning, skoler"]["deadline"] is None
    assert notices["Kantinedrift på Jobcenter Roskilde"]["deadline"] is None
    assert newest_runs(config)["crawl:roskilde"]["outcome"] == "ok"


# --------------------------------------------------------------------------- 3. ids with surrogates, NUL, bidi


def test_surrogates_nul_and_bidi_overrides_in_ids_cost_only_themselves_and_never_reach_the_store(tmp_path):
    text, good_ocids = ocds_lines({
        0: {"ocid": "ocds-kuma6s-\ud800-148440", "id": "release-\udfff"},
        1: {"ocid": "ocds-kuma6s-\x00148410\x00"},
        2: {"ocid": "ocds-kuma6s-\u202e0148\u202c-\u2066x\u2069"},
        3: {"ocid": "\u202e\u200b\x00"},  # nothing usable left: rejected alone
        4: {"tender.title": "Rengøring \ud83d af \udca9 skoler\x00"},
    })
    path = tmp_path / "hostile.jsonl"
    path.write_text(text, encoding="utf-8")
    db = tmp_path / "store.db"

    result = run_cli("--db", str(db), "ingest", str(path))

    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    ids = stored_ids(db)
    assert {f"ocds:{ocid}" for ocid in good_ocids} <= ids, result.stdout + result.stderr
    assert len(ids) == len(good_ocids) + 4
    assert "ocds:ocds-kuma6s--148440" in ids and "ocds:ocds-kuma6s-148410" in ids and "ocds:ocds-kuma6s-0148-x" in ids
    for notice_id in ids:
        assert not any(ch in notice_id for ch in UNWANTED_IN_IDS), repr(notice_id)
        notice_id.encode("utf-8")
    with sqlite3.connect(db) as connection:
        keys = [row[0] for row in connection.execute("SELECT key FROM notice_keys")]
        titles = [row[0] for row in connection.execute("SELECT title FROM notices")]
    assert not any(ch in key for key in keys for ch in UNWANTED_IN_IDS)
    assert "Rengøring af skoler" in titles
    assert result.returncode == 1  # one release was rejected: named, with its reason
    assert f"rejected {path.as_uri()}: item 4: release: no ocid" in result.stderr


# --------------------------------------------------------------------------- a notice the store cannot take


def test_a_notice_the_store_cannot_take_is_an_error_alone_and_the_run_is_partial(tmp_path):
    """A parser bug that puts a value JSON cannot hold into one record (here bytes) must cost
    that notice only: the document's other notices are stored, the run is partial."""
    content = (SAMPLE / "ocds" / "wales_sell2wales_2025_first20.jsonl").read_bytes()
    prepared = prepare_document(Document(source="wales", url="file:///wales.jsonl", content=content))
    assert len(prepared.notices) >= 3
    broken = prepared.notices[1]
    broken.record["description"] = b"\x00\x01 not text"
    store = Store.open(tmp_path / "store.db")
    run_id = store.start_run("ingest", source="wales")
    ingester = NoticeIngester(store, source="wales", run_id=run_id)
    with store.transaction():
        ingester.store_prepared(prepared)
    ingester.record_run()
    ids = {record["id"] for record in store.notices()}
    run = store.get_run(run_id)
    store.close()
    assert ids == {notice.record["id"] for notice in prepared.notices} - {broken.record["id"]}
    assert ingester.stats.errors == 1 and run["outcome"] == "partial"
    assert f"notice {broken.record['id']}: TypeError" in ingester.stats.rejections[0]


# --------------------------------------------------------------------------- a stored record of the wrong shape


def test_one_stored_notice_of_the_wrong_shape_costs_the_match_nothing_else(tmp_path):
    """A store written by an older version (or edited by hand) may hold a record with a field
    of a type no parser writes: the match goes on for every other notice and profile, names
    the odd one and is not `ok`."""
    db = tmp_path / "store.db"
    profiles = ROOT / "config" / "profiles"
    run_cli("--db", str(db), "ingest", str(SAMPLE), check=True)
    args = ("--db", str(db), "--profiles", str(profiles), "match", "--as-of", "2016-01-01")
    run_cli(*args, check=True)
    before = json.loads(run_cli("--db", str(db), "log", "--format", "json", check=True).stdout)
    odd = next(row["notice_id"] for row in before)
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE notices SET record = json_set(record, '$.lots[0].cpv', 5)"
                           " WHERE id = ?", [odd])

    result = run_cli(*args)

    assert "Traceback" not in result.stderr
    after = json.loads(run_cli("--db", str(db), "log", "--format", "json", check=True).stdout)
    expected = [(row["profile_id"], row["notice_id"], row["lot_id"]) for row in before if row["notice_id"] != odd]
    assert [(row["profile_id"], row["notice_id"], row["lot_id"]) for row in after] == expected
    run = runs_of(db)[0]
    assert run["job"] == "match" and run["outcome"] == "partial"
    assert f"{odd}: unusable: cpv is not a list of text" in run["error"]
    assert result.returncode == 1 and odd in result.stderr
