"""The `tendermatch` command end to end, in real processes: ingest, tenders, reparse, demo."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from tests.conftest import ROOT, SAMPLE, SMALL_CORPUS, run_cli

SECRET = "TOP-SECRET-LOCAL-FILE-CONTENT-4711"


def tenders_json(db) -> list[dict]:
    result = run_cli("--db", str(db), "tenders", "--format", "json", check=True)
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    """A store filled by ingesting the whole bundled sample once."""
    folder = tmp_path_factory.mktemp("sample")
    db = folder / "store.db"
    result = run_cli("--db", str(db), "ingest", str(SAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    return db


def test_every_stored_notice_validates_against_the_schema(sample_store, validator):
    records = tenders_json(sample_store)
    assert len(records) > 100
    for record in records:
        errors = sorted(validator.iter_errors(record), key=str)
        assert not errors, f"{record['id']}: {errors[0].message}"
    kinds = {r["stage"] for r in records}
    assert {"planning", "competition", "result"} <= kinds
    assert all(len(r["lots"]) >= 1 for r in records)


def test_tenders_filters_and_table(sample_store):
    records = tenders_json(sample_store)
    one = records[0]["id"]
    only = json.loads(run_cli("--db", str(sample_store), "tenders", "--format", "json", "--id", one, check=True).stdout)
    assert [r["id"] for r in only] == [one]
    recent = json.loads(run_cli("--db", str(sample_store), "tenders", "--format", "json", "--since", "2023-01-01",
                                check=True).stdout)
    assert recent and len(recent) < len(records)
    assert all(r["published"] >= "2023-01-01" for r in recent if r["published"])
    table = run_cli("--db", str(sample_store), "tenders", check=True).stdout
    assert table.splitlines()[0].split()[:4] == ["id", "kind", "stage", "status"]
    assert f"{len(records)} notices" in table
    bad = run_cli("--db", str(sample_store), "tenders", "--since", "last week")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_ingest_rejects_bad_files_with_one_line_each_and_keeps_the_good(tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    good = sorted((SAMPLE / "ted-dk").glob("*.xml"))[:3]
    for path in good:
        shutil.copy(path, folder)
    original = good[0].read_bytes()
    (folder / "truncated.xml").write_bytes(original[: len(original) // 2])
    (folder / "empty.xml").write_bytes(b"")
    (folder / "binary.xml").write_bytes(bytes(range(256)) * 40)
    (folder / "wrong-root.xml").write_bytes(b"<?xml version='1.0'?><invoice><total>1</total></invoice>")
    (folder / "xxe.xml").write_text(f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
                                    f'<TED_EXPORT><TITLE>&x;</TITLE></TED_EXPORT>')
    laughs = "".join(f'<!ENTITY {chr(98 + i)} "&{chr(97 + i)};&{chr(97 + i)};&{chr(97 + i)};">' for i in range(9))
    (folder / "laughs.xml").write_text('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                                       + laughs + ']><ContractNotice>&j;</ContractNotice>')
    (folder / "wrong-types.json").write_text('{"releases": "not a list"}')
    with open(folder / "huge.xml", "wb") as huge:  # 100 MB, sparse: refused unread
        huge.truncate(100 * 1024 * 1024)
    db = tmp_path / "store.db"
    result = run_cli("--db", str(db), "ingest", str(folder))
    assert result.returncode == 1
    rejected = [line for line in result.stderr.splitlines() if line.strip().startswith("rejected")]
    assert len(rejected) == 8, result.stderr
    for name in ("truncated", "empty", "binary", "wrong-root", "xxe", "laughs", "wrong-types", "huge"):
        assert any(f"{name}." in line for line in rejected), name
    assert any("over the 20 MB limit" in line for line in rejected)
    assert "new 3" in result.stdout and "rejected 8" in result.stdout
    records = tenders_json(db)
    assert len(records) == 3
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert SECRET not in dump


def test_reparse_rebuilds_notices_from_kept_documents_without_the_files(tmp_path):
    folder = tmp_path / "notices"
    shutil.copytree(SAMPLE / "eforms", folder)
    db = tmp_path / "store.db"
    run_cli("--db", str(db), "ingest", str(folder), check=True)
    before = tenders_json(db)
    shutil.rmtree(folder)  # the documents now exist only in the store
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE notices SET record = json_set(record, '$.title', 'broken by an old parser')")
    result = run_cli("--db", str(db), "reparse")
    assert result.returncode == 0, result.stderr
    after = tenders_json(db)
    assert after == before
    assert f"{len(before)} notices rebuilt" in result.stdout


def test_crawl_of_a_files_source_runs_scrapy_and_reports(tmp_path, config_file):
    folder = tmp_path / "drop"
    shutil.copytree(SAMPLE / "ted-dk", folder)
    (folder / "broken.xml").write_bytes(b"<TED_EXPORT><unclosed>")
    config = config_file(store="s.db", sources=[{"name": "drop", "kind": "files", "path": "drop"}])
    result = run_cli("--config", str(config), "crawl")
    assert result.returncode == 1
    assert "drop: fetched 29, new 28, updated 0, unchanged 0, rejected 1, errors 0" in result.stdout
    assert "broken.xml: malformed XML" in result.stderr
    again = run_cli("--config", str(config), "crawl")
    assert "new 0" in again.stdout and "skipped" not in again.stderr
    sources = run_cli("--config", str(config), "sources", check=True).stdout
    assert "drop" in sources and "files" in sources


def test_demo_runs_from_anywhere_with_no_config_and_no_network(tmp_path):
    env = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}  # any network use would fail
    result = run_cli("demo", "--state-dir", str(tmp_path / "demo"), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rejected 0, errors 0" in result.stdout and "rejected 1" not in result.stdout
    assert str(tmp_path / "demo" / "tendermatch.db") in result.stdout
    records = tenders_json(tmp_path / "demo" / "tendermatch.db")
    assert len(records) > 100
    assert {"demo-ted-dk", "demo-eforms", "demo-ocds", "demo-ted-api"} <= {s for r in records for s in r["sources"]}
    assert ROOT.joinpath("config", "demo.toml").is_file()


def test_parallel_ingest_stores_exactly_what_a_serial_ingest_stores(tmp_path):
    """`ingest` of 50+ files parses in worker processes; the result must not depend on it."""
    from tendermatch.crawler.ingest import NoticeIngester
    from tendermatch.crawler.items import Document
    from tendermatch.crawler.spiders.files import notice_files
    from tendermatch.store import Store

    folder = SMALL_CORPUS  # the repo's real notices of every format (tests/data/SOURCES.md)
    files = notice_files(str(folder))
    assert len(files) >= 50  # enough for the parallel path
    parallel_db = tmp_path / "parallel.db"
    result = run_cli("--db", str(parallel_db), "ingest", str(folder))
    assert result.returncode == 1  # the SDK's INVALID_* examples are rejected

    serial = Store.open(tmp_path / "serial.db")
    ingester = NoticeIngester(serial, source="ingest")
    for file in files:
        ingester.process(Document(source="ingest", url=file.as_uri(), content=file.read_bytes()))
    expected = list(serial.notices())
    serial.close()
    assert tenders_json(parallel_db) == expected
    assert f"rejected {ingester.stats.rejected}" in result.stdout


def test_demo_with_a_bad_secret_stops_before_it_deletes_or_crawls_anything(tmp_path):
    earlier = tmp_path / "demo" / "tendermatch.db"  # the previous demo's store
    earlier.parent.mkdir()
    earlier.write_bytes(b"the previous demo")
    result = run_cli("demo", "--state-dir", str(tmp_path / "demo"), env={"TENDERMATCH_SECRET": "short"})
    assert result.returncode == 2
    assert "Error: $TENDERMATCH_SECRET is too short" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == "" and earlier.read_bytes() == b"the previous demo"


def test_demo_never_touches_the_store_given_with_db(tmp_path):
    operator_store = tmp_path / "prod.db"
    operator_store.write_bytes(b"the operator's data")
    result = run_cli("--db", str(operator_store), "demo", "--state-dir", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    assert operator_store.read_bytes() == b"the operator's data"


def test_without_config_or_db_the_command_says_what_to_give(tmp_path):
    result = run_cli("tenders", cwd=tmp_path)
    assert result.returncode == 2
    assert "give --config PATH" in result.stderr and "--db PATH" in result.stderr
    assert not (tmp_path / "var").exists()
