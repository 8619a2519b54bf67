"""The store: migrations, raw documents, notices with their sources and history."""

from __future__ import annotations

import hashlib
import re
import threading

import pytest

from tendermatch.crawler.parsers.common import finish_record, new_lot, new_record
from tendermatch.store import Store, StoreError, compress
from tendermatch.store.schema import MIGRATIONS, migrate


def sample_record(notice_id: str = "ted:1-2026", **fields) -> dict:
    record = new_record(id=notice_id, title="Rengøring af skoler", cpv=["90911200"],
                        lots=[new_lot("1", title="Rengøring", cpv=["90911200"],
                                      value={"amount": 1_500_000.0, "currency": "DKK"})], **fields)
    return finish_record(record)


def test_migrations_apply_once_and_are_recorded(tmp_path):
    path = tmp_path / "store.db"
    Store.open(path).close()
    store = Store.open(path)
    assert migrate(store.db) == []  # nothing left to apply
    names = [row[0] for row in store.db.execute("SELECT name FROM _migrations")]
    assert names == [name for name, _ in MIGRATIONS]
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_two_processes_opening_a_new_store_at_once_both_succeed(tmp_path):
    path = tmp_path / "store.db"
    errors = []

    def open_it():
        try:
            Store.open(path).close()
        except Exception as error:  # pragma: no cover - the failure we look for
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Store.open(path).db.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=re.escape("notes.db")):
        Store.open(path)


def test_raw_documents_are_kept_compressed_once():
    store = Store.memory()
    content = b"<TED_EXPORT>" + b"x" * 10_000 + b"</TED_EXPORT>"
    kept = {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content), "compressed": compress(content)}
    raw_id, new = store.save_raw(source="s", url="file:///a.xml", fetched_at="2026-11-22T10:00:00+00:00",
                                 format=None, **kept)
    again, new_again = store.save_raw(source="s", url="file:///a.xml", fetched_at="2026-11-23T10:00:00+00:00",
                                      format=None, **kept)
    assert new and not new_again and again == raw_id
    size_on_disk = store.db.execute("SELECT length(content) FROM raw_documents").fetchone()[0]
    assert size_on_disk < len(content) / 10
    assert [raw.content for raw in store.iter_raw()] == [content]
    assert store.known_urls("s") == {"file:///a.xml"}


def test_notice_round_trip_with_sources_lots_and_history():
    store = Store.memory()
    record = sample_record()
    store.put_notice(record, keys=["pub:1-2026"], source="ted-dk", source_url="https://ted", raw_id=None,
                     change="new", fields=[], format="ted-xml")
    store.add_source(record["id"], "kk-udbud", "https://kk.example/udbud/1")
    stored = store.get_notice("ted:1-2026")
    assert stored["title"] == "Rengøring af skoler"
    assert stored["sources"] == ["ted-dk", "kk-udbud"]
    assert store.notice_id_for_keys(["nope", "pub:1-2026"]) == "ted:1-2026"
    lots = list(store.db.query("SELECT lot_id, value_amount, value_currency FROM lots"))
    assert lots == [{"lot_id": "1", "value_amount": 1_500_000.0, "value_currency": "DKK"}]
    updated = dict(stored, deadline="2026-12-01T12:00:00+01:00")
    store.put_notice(updated, keys=[], source="ted-dk", source_url=None, raw_id=None, change="changed",
                     fields=["deadline"], format="ted-xml")
    history = store.notice_history("ted:1-2026")
    assert [(h["version"], h["change"]) for h in history] == [(1, "new"), (2, "changed")]
    assert store.get_notice("ted:1-2026")["deadline"] == "2026-12-01T12:00:00+01:00"


def test_repeated_lot_ids_are_kept_apart():
    store = Store.memory()
    record = sample_record()
    record["lots"] = [new_lot("1", title="A"), new_lot("1", title="B")]
    store.put_notice(record, keys=[], source="s", source_url=None, raw_id=None, change="new", fields=[])
    assert [lot["lot_id"] for lot in store.get_notice(record["id"])["lots"]] == ["1", "1#2"]


def test_transaction_rolls_back_everything_on_error():
    store = Store.memory()
    with pytest.raises(RuntimeError), store.transaction():
        store.put_notice(sample_record(), keys=["k"], source="s", source_url=None, raw_id=None, change="new",
                         fields=[])
        raise RuntimeError("boom")
    assert store.counts()["notices"] == 0
    assert store.notice_id_for_keys(["k"]) is None


def test_runs_and_last_successful_run():
    store = Store.memory()
    first = store.start_run("crawl", source="ted-dk")
    store.finish_run(first, outcome="ok", stats={"new": 3})
    second = store.start_run("crawl", source="ted-dk")
    store.finish_run(second, outcome="partial", stats={"new": 1, "errors": 2})
    assert store.last_successful_run("ted-dk")["id"] == first
    assert store.last_run("ted-dk")["id"] == second


def test_concurrent_writer_waits_instead_of_failing(tmp_path):
    path = tmp_path / "store.db"
    writer = Store.open(path)
    other = Store.open(path)
    writer.db.conn.execute("BEGIN IMMEDIATE")
    writer.db.execute("INSERT INTO runs (job, started, outcome) VALUES ('x', 'now', 'running')")
    release = threading.Timer(0.5, writer.db.conn.commit)
    release.start()
    run_id = other.start_run("crawl", source="s")  # blocks until the commit, then succeeds
    release.join()
    assert run_id == 2
    assert [row[0] for row in other.db.execute("SELECT job FROM runs ORDER BY id")] == ["x", "crawl"]
