"""The pipeline: de-duplication, versioning, change notices, cancellations, cross-source merge."""

from __future__ import annotations

from tendermatch.crawler.dedupe import same_real_notice
from tendermatch.crawler.ingest import NoticeIngester
from tendermatch.crawler.items import Document
from tendermatch.crawler.parsers.common import ParsedNotice, finish_record, new_lot, new_record
from tendermatch.store import Store
from tests.conftest import real_notice


def parsed(notice_id: str, *, keys=(), changes=None, **fields) -> ParsedNotice:
    fields.setdefault("title", "Rengøring af daginstitutioner")
    fields.setdefault("buyer", {"name": "Københavns Kommune", "country": "DNK", "city": "København"})
    fields.setdefault("deadline", "2026-12-15T12:00:00+01:00")
    fields.setdefault("published", "2026-11-20")
    lots = fields.pop("lots", [new_lot("1", value={"amount": 800_000.0, "currency": "DKK"})])
    return ParsedNotice(finish_record(new_record(id=notice_id, lots=lots, **fields)), keys=list(keys), changes=changes)


def store_all(store: Store, source: str, notices: list[ParsedNotice], format: str = "eforms") -> NoticeIngester:
    ingester = NoticeIngester(store, source=source)
    for notice in notices:
        with store.transaction():
            ingester.store_notice(notice, format=format, raw_id=None, url=f"https://{source}.example/{notice.record['id']}")
    return ingester


def test_same_notice_twice_is_stored_once_and_counted_unchanged():
    store = Store.memory()
    ingester = store_all(
        store, "ted", [parsed("eforms:1", keys=["pub:1-2026"]), parsed("eforms:1", keys=["pub:1-2026"])]
    )
    assert store.counts()["notices"] == 1
    assert (ingester.stats.new, ingester.stats.unchanged, ingester.stats.updated) == (1, 1, 0)


def test_change_notice_moves_the_deadline_of_the_earlier_version():
    store = Store.memory()
    original = parsed("eforms:1", keys=["uuid:aaa", "pub:1-2026"])
    change = parsed("eforms:2", keys=["uuid:bbb", "pub:2-2026"], changes="uuid:aaa",
                    deadline="2027-01-10T12:00:00+01:00", published="2026-11-25")
    ingester = store_all(store, "ted", [original, change])
    assert store.counts()["notices"] == 1
    stored = store.get_notice("eforms:1")
    assert stored["deadline"] == "2027-01-10T12:00:00+01:00"
    assert stored["status"] == "active"
    assert store.notice_id_for_keys(["pub:2-2026"]) == "eforms:1"
    assert [h["change"] for h in store.notice_history("eforms:1")] == ["new", "changed"]
    assert ingester.stats.updated == 1


def test_cancellation_sets_status_cancelled():
    store = Store.memory()
    cancel = parsed("eforms:3", keys=["uuid:ccc"], changes="uuid:aaa", status="cancelled", published="2026-11-26")
    store_all(store, "ted", [parsed("eforms:1", keys=["uuid:aaa"]), cancel])
    assert store.get_notice("eforms:1")["status"] == "cancelled"
    assert store.notice_history("eforms:1")[-1]["change"] == "cancelled"


def test_change_notice_before_its_original_still_ends_as_one_notice_with_the_newer_values():
    store = Store.memory()
    change = parsed("eforms:2", keys=["uuid:bbb"], changes="uuid:aaa", deadline="2027-01-10T12:00:00+01:00",
                    published="2026-11-25")
    original = parsed("eforms:1", keys=["uuid:aaa"], published="2026-11-20")
    store_all(store, "ted", [change, original])
    assert store.counts()["notices"] == 1
    (only,) = list(store.notices())
    assert only["deadline"] == "2027-01-10T12:00:00+01:00"


def test_same_notice_from_ted_and_a_municipal_page_becomes_one_record_with_both_sources():
    store = Store.memory()
    ted = parsed("ted:612345-2026", keys=["pub:612345-2026"], title="Rengøring af daginstitutioner i Valby",
                 titles={"da": "Rengøring af daginstitutioner i Valby", "en": "Cleaning of day-care centres"},
                 cpv=["90911200"])
    web = parsed("web:https://kk.example/udbud/17", keys=["url:https://kk.example/udbud/17"],
                 title="Rengøring af daginstitutioner i Valby.",
                 buyer={"name": "Københavns Kommune, BUF", "country": None, "city": None},
                 deadline="2026-12-15T12:00:00", cpv=[])
    store_all(store, "ted-dk", [ted], format="ted-xml")
    store_all(store, "kk-udbud", [web], format="html")
    records = list(store.notices())
    assert len(records) == 1
    assert records[0]["id"] == "ted:612345-2026"
    assert records[0]["sources"] == ["ted-dk", "kk-udbud"]
    assert records[0]["cpv"] == ["90911200"]  # the poorer HTML record did not wipe the TED data
    assert store.notice_id_for_keys(["url:https://kk.example/udbud/17"]) == "ted:612345-2026"


def test_html_first_then_ted_the_richer_ted_data_wins_and_the_id_stays():
    store = Store.memory()
    web = parsed("web:https://kk.example/udbud/17", keys=["url:https://kk.example/udbud/17"], cpv=[], lots=[])
    ted = parsed("ted:612345-2026", keys=["pub:612345-2026"], cpv=["90911200"], description="Fuld beskrivelse")
    store_all(store, "kk-udbud", [web], format="html")
    store_all(store, "ted-dk", [ted], format="ted-xml")
    (record,) = list(store.notices())
    assert record["id"] == "web:https://kk.example/udbud/17"
    assert record["cpv"] == ["90911200"] and record["description"] == "Fuld beskrivelse"
    assert record["sources"] == ["kk-udbud", "ted-dk"]


def test_different_notices_with_the_same_deadline_are_not_merged():
    store = Store.memory()
    store_all(store, "a", [parsed("x:1", title="Rengøring af daginstitutioner")])
    store_all(store, "b", [parsed("x:2", title="Levering af frugt til skoler")])
    store_all(store, "c", [parsed("x:3", title="Rengøring af daginstitutioner",
                                  buyer={"name": "Aarhus Kommune", "country": "DNK", "city": "Aarhus"})])
    assert store.counts()["notices"] == 3


def test_same_procedure_and_stage_from_two_sources_is_one_notice():
    store = Store.memory()
    store_all(store, "ted-dk", [parsed("eforms:00012345-2026", keys=["pub:12345-2026"], procedure_id="p-1")])
    store_all(store, "ocds", [parsed("ocds:ocds-xyz", keys=["ocid:ocds-xyz"], procedure_id="p-1",
                                     title="Something else entirely", deadline=None)], format="ocds")
    assert store.counts()["notices"] == 1


def test_result_notice_closes_the_competition_of_its_procedure():
    store = Store.memory()
    store_all(store, "ted", [parsed("eforms:1", keys=["uuid:1"], procedure_id="p-9")])
    store_all(store, "ted", [parsed("eforms:2", keys=["uuid:2"], procedure_id="p-9", stage="result", deadline=None,
                                    supplier="Rent & Pænt ApS")])
    assert store.get_notice("eforms:1")["status"] == "closed"
    assert store.get_notice("eforms:2")["status"] == "active"


def test_same_real_notice_compares_titles_in_every_language():
    a = {
        "title": "Vinduespudsning", "titles": {"en": "Window cleaning services"}, "buyer": {"name": "Roskilde Kommune"},
    }
    b = {"title": "Window cleaning services", "titles": {}, "buyer": {"name": "Roskilde Kommune"}}
    assert same_real_notice(a, b)
    assert not same_real_notice(a, {"title": "Snerydning", "titles": {}, "buyer": {"name": "Roskilde Kommune"}})


def test_a_bad_document_is_rejected_and_the_good_ones_in_the_batch_are_stored():
    store = Store.memory()
    ingester = NoticeIngester(store, source="test")
    good = real_notice("eforms_sdk/examples/notices/cn_24_minimal.xml").read_bytes()
    ingester.process(Document(source="test", url="file:///good.xml", content=good))
    ingester.process(Document(source="test", url="file:///truncated.xml", content=good[: len(good) // 2]))
    ingester.process(Document(source="test", url="file:///empty.xml", content=b""))
    assert ingester.stats.new == 1 and ingester.stats.rejected == 2
    reasons = [row["reason"] for row in store.db.query("SELECT reason FROM rejections")]
    assert any("malformed XML" in reason for reason in reasons) and any("empty" in reason for reason in reasons)
    assert all("\n" not in line for line in ingester.stats.rejections)
    statuses = dict(store.db.execute("SELECT url, status FROM raw_documents").fetchall())
    assert statuses["file:///good.xml"] == "parsed" and statuses["file:///truncated.xml"] == "rejected"


def three_lots() -> list:
    return [new_lot(f"LOT-000{n}", title=f"Delområde {n}", value={"amount": 100_000.0 * n, "currency": "DKK"})
            for n in (1, 2, 3)]


def corrigendum(notice_id: str, changes: str, deadline: str, published: str) -> ParsedNotice:
    """Like a TED F14: stage 'change', only the new deadline, a placeholder lot."""
    return parsed(notice_id, keys=[f"pub:{notice_id}"], changes=changes, stage="change", deadline=deadline,
                  published=published, lots=[])


def test_corrigendum_moves_the_deadline_and_keeps_stage_and_lots():
    store = Store.memory()
    store_all(store, "ted", [parsed("ted:1", keys=["pub:1-2026"], lots=three_lots()),
                             corrigendum("ted:2", "pub:1-2026", "2027-01-20T12:00:00", "2026-12-01")], format="ted-xml")
    record = store.get_notice("ted:1")
    assert (record["stage"], len(record["lots"]), record["deadline"]) == ("competition", 3, "2027-01-20T12:00:00")


def test_an_older_change_arriving_late_does_not_undo_a_newer_one():
    store = Store.memory()
    store_all(store, "ted", [parsed("ted:1", keys=["pub:1-2026"], lots=three_lots()),
                             corrigendum("ted:3", "pub:1-2026", "2027-01-20T12:00:00", "2026-12-01"),
                             corrigendum("ted:2", "pub:1-2026", "2027-01-10T12:00:00", "2026-11-25")], format="ted-xml")
    assert store.get_notice("ted:1")["deadline"] == "2027-01-20T12:00:00"


def test_corrigendum_before_its_original_ends_as_the_original_changed():
    store = Store.memory()
    store_all(store, "ted", [corrigendum("ted:2", "pub:1-2026", "2027-01-20T12:00:00", "2026-12-01"),
                             parsed("ted:1", keys=["pub:1-2026"], lots=three_lots(), published="2026-11-20")],
              format="ted-xml")
    (record,) = list(store.notices())
    assert (record["stage"], len(record["lots"]), record["deadline"]) == ("competition", 3, "2027-01-20T12:00:00")
    # the same corrigendum again changes nothing
    ingester = store_all(store, "ted", [corrigendum("ted:2", "pub:1-2026", "2027-01-20T12:00:00", "2026-12-01")])
    assert ingester.stats.unchanged == 1 and store.counts()["notices"] == 1


def test_two_results_of_one_procedure_and_equal_municipal_references_stay_apart():
    store = Store.memory()
    store_all(store, "ted", [parsed("eforms:a", keys=["uuid:a"], procedure_id="p-1", stage="result", supplier="A ApS"),
                             parsed("eforms:b", keys=["uuid:b"], procedure_id="p-1", stage="result", supplier="B ApS")])
    store_all(store, "kk", [parsed("web:kk/1", keys=["url:kk/1"], procedure_id="2026-001", title="Snerydning")], "html")
    store_all(store, "roskilde", [parsed("web:ros/1", keys=["url:ros/1"], procedure_id="2026-001", title="Kantine",
                                         buyer={"name": "Roskilde Kommune", "country": "DK", "city": None})], "html")
    assert store.counts()["notices"] == 4


def test_a_result_arriving_before_its_competition_still_closes_it_with_history():
    store = Store.memory()
    store_all(store, "ted", [parsed("eforms:r", keys=["uuid:r"], procedure_id="p-2", stage="result", deadline=None),
                             parsed("eforms:c", keys=["uuid:c"], procedure_id="p-2")])
    assert store.get_notice("eforms:c")["status"] == "closed"
    store_all(store, "ted", [parsed("eforms:c2", keys=["uuid:c2"], procedure_id="p-3"),
                             parsed("eforms:r2", keys=["uuid:r2"], procedure_id="p-3", stage="result", deadline=None)])
    assert store.get_notice("eforms:c2")["status"] == "closed"
    assert [h["change"] for h in store.notice_history("eforms:c2")] == ["new", "closed"]


def test_each_source_keeps_its_own_url_for_a_merged_notice():
    store = Store.memory()
    store_all(store, "ted-dk", [parsed("ted:9", keys=["pub:9-2026"])], format="ted-xml")
    store_all(store, "kk-udbud", [parsed("web:x", keys=["url:x"], buyer={"name": "Københavns Kommune", "country": None,
                                                                       "city": None})], format="html")
    urls = dict(store.db.execute("SELECT source, url FROM notice_sources").fetchall())
    assert urls == {"ted-dk": "https://ted-dk.example/ted:9", "kk-udbud": "https://kk-udbud.example/web:x"}
