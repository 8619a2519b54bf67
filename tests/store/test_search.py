"""The store's full-text search and the tables the web view reads.

Proves that ``notices_fts`` (FTS5, trigram tokenizer, external content = notices, brought
up to date by the store at each commit from a queue its triggers fill; migration 005) finds
a word inside a Danish compound in a title and a word in a description, case-insensitively
with Danish letters, and nothing for queries under 3 characters; that it follows put_notice
updates, set_status and clear_notices with a passing integrity check after each; that
migrating a store made at 004 fills the new description column from the record JSON and
indexes the old notices. Also: save_profiles and profile(), and add_delivery keeping an
item's reasons as a JSON list.
"""

from __future__ import annotations

import json

import pytest
import sqlite_utils

from tendermatch.crawler.parsers.common import finish_record, new_record
from tendermatch.store import Store
from tendermatch.store.schema import MIGRATIONS, migrate

SEARCH = ("SELECT n.id FROM notices_fts JOIN notices n ON n.rowid = notices_fts.rowid"
          " WHERE notices_fts MATCH ? ORDER BY n.id")


def found(store: Store, query: str) -> list[str]:
    return [row[0] for row in store.db.execute(SEARCH, [query])]


def integrity_ok(db: sqlite_utils.Database) -> None:
    """Raises sqlite3.DatabaseError ("database disk image is malformed") if the index is
    broken; with rank 1 also if it disagrees with the notices rows (external content: the
    plain check alone does not compare them)."""
    db.execute("INSERT INTO notices_fts(notices_fts) VALUES('integrity-check')")
    db.execute("INSERT INTO notices_fts(notices_fts, rank) VALUES('integrity-check', 1)")


def record(notice_id: str, title: str, description: str | None = None) -> dict:
    return finish_record(new_record(id=notice_id, title=title, description=description, cpv=["90911200"]))


def put(store: Store, rec: dict, change: str = "new") -> None:
    store.put_notice(rec, keys=[f"pub:{rec['id']}"], source="test", source_url=None, raw_id=None, change=change,
                     fields=[] if change == "new" else ["title"])


@pytest.fixture
def store() -> Store:
    store = Store.memory()
    put(store, record("t:1", "Vinduesrengøring af kommunens skoler", "Pudsning af vinduer to gange om året."))
    put(store, record("t:2", "Kantinedrift på rådhuset", "Frokostordning og daglig rengøring af køkkenet."))
    put(store, record("t:3", "Levering af kontorartikler", "Papir og kuverter."))
    return store


def test_a_word_inside_a_compound_title_and_in_a_description_is_found(store):
    integrity_ok(store.db)
    assert found(store, '"rengøring"') == ["t:1", "t:2"]  # t:1 by its title's compound, t:2 by its description
    assert found(store, '"vinduer"') == ["t:1"]  # a description word
    assert found(store, '"kontor"') == ["t:3"]  # the start of a compound


def test_search_ignores_case_also_for_danish_letters(store):
    assert found(store, '"RENGØRING"') == found(store, '"rengøring"') == ["t:1", "t:2"]
    assert found(store, '"RÅDHUSET"') == ["t:2"]


@pytest.mark.parametrize("query", ['"af"', '"ø"', "af"])
def test_queries_shorter_than_three_characters_find_nothing(store, query):
    # The trigram tokenizer indexes 3-character sequences: "af" is in every title here,
    # yet a shorter query matches no row (the web view says: give at least 3 letters).
    assert "af" in store.get_notice("t:1")["title"]
    assert found(store, query) == []


def test_many_changes_of_one_notice_in_one_transaction_are_indexed_once_as_they_end(store):
    # A crawl stores a notice, then its change notices, in one batch: the queue notes the
    # first change and the index gets the last state at the commit.
    with store.transaction():
        put(store, record("t:4", "Snerydning af veje"))
        for title in ("Snerydning af stier", "Vintertjeneste på stier"):
            put(store, dict(store.get_notice("t:4"), title=title), change="updated")
        put(store, dict(store.get_notice("t:1"), title="Glaspolering af skoler"), change="updated")
        put(store, dict(store.get_notice("t:1"), title="Glaspolering af plejehjem"), change="updated")
        assert found(store, '"vintertjeneste"') == []  # not before the commit
    integrity_ok(store.db)
    assert found(store, '"vintertjeneste"') == ["t:4"] and found(store, '"snerydning"') == []
    assert found(store, '"plejehjem"') == ["t:1"] and found(store, '"vinduesrengøring"') == []
    assert store.db.execute("SELECT count(*) FROM _search_queue").fetchone()[0] == 0


def test_a_rolled_back_transaction_leaves_the_index_as_it_was(store):
    with pytest.raises(RuntimeError), store.transaction():
        put(store, dict(store.get_notice("t:1"), title="Noget helt andet"), change="updated")
        raise RuntimeError("the document failed")
    integrity_ok(store.db)
    assert found(store, '"vinduesrengøring"') == ["t:1"] and found(store, '"helt andet"') == []


def test_the_index_follows_updates_status_changes_and_clearing(store):
    changed = dict(store.get_notice("t:1"), title="Glaspolering af kommunens skoler")
    put(store, changed, change="updated")
    integrity_ok(store.db)
    assert found(store, '"rengøring"') == ["t:2"]  # the old title no longer matches
    assert found(store, '"glaspolering"') == ["t:1"]  # the new one does
    assert found(store, '"vinduer"') == ["t:1"]  # the description still does

    store.set_status(["t:1"], "cancelled", source="test", raw_id=None)
    integrity_ok(store.db)
    assert store.get_notice("t:1")["status"] == "cancelled"
    assert found(store, '"glaspolering"') == ["t:1"]

    store.clear_notices()
    integrity_ok(store.db)
    assert found(store, '"rengøring"') == []
    assert found(store, '"glaspolering"') == []
    assert store.db.execute("SELECT count(*) FROM notices_fts").fetchone()[0] == 0

    put(store, record("t:4", "Erhvervsrengøring"))  # after reparse's clear, new notices are indexed again
    integrity_ok(store.db)
    assert found(store, '"rengøring"') == ["t:4"]


def test_migrating_a_store_made_at_004_indexes_its_old_notices():
    db = sqlite_utils.Database(memory=True)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for name, apply in MIGRATIONS[:4]:
        apply(db)
        db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, datetime('now'))", [name])
    db.conn.commit()
    assert "description" not in db["notices"].columns_dict
    assert "notices_fts" not in db.table_names()
    old = record("old:1", "Snerydning og glatførebekæmpelse", "Vintertjeneste og saltning af cykelstier.")
    db.execute("INSERT INTO notices (id, kind, stage, status, title, version, first_seen, updated_at, record)"
               " VALUES (?, 'tender', 'competition', 'active', ?, 1, '2026-01-05T10:00:00+00:00',"
               " '2026-01-05T10:00:00+00:00', ?)", [old["id"], old["title"], json.dumps(old, ensure_ascii=False)])
    db.conn.commit()

    assert migrate(db) == [name for name, _ in MIGRATIONS[4:]]
    store = Store(db, ":memory:")
    assert db.execute("SELECT description FROM notices WHERE id = 'old:1'").fetchone()[0] == old["description"]
    integrity_ok(db)
    assert found(store, '"saltning"') == ["old:1"]  # from the description the migration filled in
    assert found(store, '"glatføre"') == ["old:1"]  # from the title
    assert migrate(db) == []


PROFILES = [
    {"id": "rentfokus", "name": "RentFokus", "emails": ["kontakt@rentfokus.example"], "language": "da",
     "description": "Rengøring", "keywords": ["rengøring", "vinduespudsning"], "cpv": ["909"], "regions": ["DK02"],
     "max_value": 2_000_000.0, "reserved_eligible": ["sheltered"]},
    {"id": "maaltid", "name": "Måltidsværkstedet", "emails": ["kontakt@maaltidsvaerkstedet.example"],
     "language": "da", "description": None, "keywords": ["kantine"], "cpv": [], "regions": [], "max_value": None,
     "reserved_eligible": []},
]


def test_save_profiles_keeps_them_with_lists_as_json():
    store = Store.memory()
    store.save_profiles(PROFILES)
    row = store.profile("rentfokus")
    assert row["name"] == "RentFokus"
    assert json.loads(row["emails"]) == ["kontakt@rentfokus.example"]
    assert json.loads(row["keywords"]) == ["rengøring", "vinduespudsning"]
    assert json.loads(row["reserved_eligible"]) == ["sheltered"]
    assert row["max_value"] == 2_000_000.0 and row["updated_at"]
    assert json.loads(store.profile("maaltid")["cpv"]) == []
    assert store.profile("nobody") is None


def test_save_profiles_replaces_all_unless_only():
    store = Store.memory()
    store.save_profiles(PROFILES)
    renamed = dict(PROFILES[0], name="RentFokus ApS", emails=["ny@rentfokus.example"])
    store.save_profiles([renamed], only=True)  # `match --profile rentfokus`: the others stay
    assert store.profile("rentfokus")["name"] == "RentFokus ApS"
    assert json.loads(store.profile("rentfokus")["emails"]) == ["ny@rentfokus.example"]
    assert store.profile("maaltid")["name"] == "Måltidsværkstedet"

    store.save_profiles([PROFILES[1]])  # a full match: a profile no longer given is removed
    assert store.profile("rentfokus") is None
    assert store.profile("maaltid") is not None
    assert store.db.execute("SELECT count(*) FROM profiles").fetchone()[0] == 1


def test_add_delivery_keeps_item_reasons_as_a_json_list():
    store = Store.memory()
    delivery = {"profile_id": "rentfokus", "email": "kontakt@rentfokus.example", "period": "2026-W48",
                "language": "da", "message_id": "<1@kk.example>", "subject": "Nye udbud", "items": 2, "changed": 0,
                "message": b"Subject: Nye udbud\r\n\r\nhej\r\n"}
    reasons = ["Nøgleord: rengøring", "CPV 90911200 passer"]
    delivery_id = store.add_delivery(delivery, [
        {"notice_id": "t:1", "section": "open", "rank": 1, "deadline": "2026-12-01", "status": "active",
         "reasons": reasons},
        {"notice_id": "t:2", "section": "open", "rank": 2},
    ])
    assert delivery_id is not None
    rows = dict(store.db.execute("SELECT notice_id, reasons FROM delivery_items WHERE delivery_id = ?",
                                 [delivery_id]).fetchall())
    assert json.loads(rows["t:1"]) == reasons
    assert rows["t:2"] is None  # no reasons given: none stored
    assert store.add_delivery(delivery, []) is None  # one digest per address, profile and period
