"""What goes into a digest: the untold matches that are news on the day, best rank first, at
most max_items, by section (open, planning, agreements expiring within 12 months), with the
title, buyer, lot, value, deadline and link a reader needs."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from tendermatch.notifier.digest import (
    PeriodError,
    choose_titles,
    notice_link,
    parse_period,
    period_of,
    section_of,
)
from tendermatch.notifier.run import digest_for
from tests.matcher.helpers import KANTINE, LIMPIEZA, MADSERVICE_RODOVRE, agreement, sample, sample_profile
from tests.notifier.helpers import AS_OF, SETTINGS, matched_store, recipient

PERIOD = "2016-W01"


@pytest.fixture
def kitchen():
    """Måltidsværkstedet (Danish) against the Danish TED sample, matched as of 2016-01-01."""
    profile = sample_profile("maaltidsvaerkstedet")
    store = matched_store([profile])
    yield store, recipient(profile)
    store.close()


def test_items_come_best_rank_first_and_by_section(kitchen):
    store, reader = kitchen
    digest = digest_for(store, reader, period=PERIOD, as_of=AS_OF, settings=SETTINGS)
    log = store.match_log(profile_id=reader.profile_id)
    sendable = [row["notice_id"] for row in log]  # every logged match is still open on AS_OF
    assert [item.notice_id for item in digest.items] == (
        [n for n in sendable if n != "ted:433955-2016"] + ["ted:433955-2016"])
    assert [item.notice_id for item in digest.sections["planning"]] == ["ted:433955-2016"]  # a PIN: early notice
    assert digest.new_count == len(log) and digest.more == 0
    ranks = [item.rank for item in digest.sections["open"]]
    assert ranks == sorted(ranks)


def test_an_item_carries_what_a_reader_needs_in_danish(kitchen):
    store, reader = kitchen
    digest = digest_for(store, reader, period=PERIOD, as_of=AS_OF, settings=SETTINGS)
    item = next(item for item in digest.items if item.notice_id == "ted:095237-2016")
    assert item.title.startswith("Kontrakt om kantinedrift for Vejlandshuset")
    assert item.subtitle is None  # a Danish notice for a Danish reader
    assert item.buyer == "HOFOR A/S"
    assert item.lot == "2 – Kontrakt om kantinedrift for Amagerværket"  # the smaller lot fits
    assert item.value == "7.500.000 kr."
    assert item.deadline == "6. april 2016 kl. 13.00" and item.days_left == "om 96 dage"
    assert item.url == "https://ted.europa.eu/da/notice/-/detail/95237-2016"
    assert "Jeres søgeord »kantinedrift« står i delkontraktens titel" in item.reasons


def test_english_reader_gets_english_labels_and_tenders_subtitle():
    profile = sample_profile("maaltidsvaerkstedet", language="en", id="kitchen-en")
    store = matched_store([profile])
    digest = digest_for(store, recipient(profile), period=PERIOD, as_of=AS_OF, settings=SETTINGS)
    item = next(item for item in digest.items if item.notice_id == "ted:095237-2016")
    assert item.deadline == "6 April 2016 at 13:00" and item.days_left == "in 96 days"
    assert item.value == "DKK 7,500,000"
    # The original (Danish) title, with TED's own English subject line under it.
    assert item.title.startswith("Kontrakt om kantinedrift") and item.subtitle.startswith("Denmark-")
    assert item.url == "https://ted.europa.eu/en/notice/-/detail/95237-2016"


def test_max_items_caps_the_digest_and_counts_the_rest(kitchen):
    store, reader = kitchen
    total = len(store.match_log(profile_id=reader.profile_id))
    assert total >= 2
    digest = digest_for(store, replace(reader, max_items=1), period=PERIOD, as_of=AS_OF, settings=SETTINGS)
    assert digest.new_count == 1 and digest.more == total - 1
    best = store.match_log(profile_id=reader.profile_id)[0]["notice_id"]
    assert [item.notice_id for item in digest.items] == [best]


def test_a_deadline_passed_on_the_day_leaves_the_digest(kitchen):
    store, reader = kitchen
    later = date(2016, 4, 7)  # the day after the kantinedrift deadline
    digest = digest_for(store, reader, period="2016-W14", as_of=later, settings=SETTINGS)
    assert "ted:095237-2016" not in [item.notice_id for item in digest.items]
    assert "ted:095237-2016" in [item.notice_id for item in
                                 digest_for(store, reader, period=PERIOD, as_of=AS_OF, settings=SETTINGS).items]


def test_agreements_appear_when_they_end_within_twelve_months():
    contract = agreement("Mødeforplejning og catering")  # ends 2028-03-01
    assert section_of(contract, as_of=date(2027, 3, 2), timezone="Europe/Copenhagen") == "agreements"
    assert section_of(contract, as_of=date(2027, 2, 1), timezone="Europe/Copenhagen") is None  # 13 months
    assert section_of(contract, as_of=date(2028, 3, 2), timezone="Europe/Copenhagen") is None  # over
    profile = sample_profile("maaltidsvaerkstedet")
    store = matched_store([profile], [contract], as_of=date(2027, 6, 1))
    digest = digest_for(store, recipient(profile), period="2027-W22", as_of=date(2027, 6, 1), settings=SETTINGS)
    [item] = digest.sections["agreements"]
    assert item.expires == "1. marts 2028"
    assert item.supplier == "Madværket – socialøkonomisk virksomhed ApS"
    assert item.url == contract["url"]


def test_cancelled_and_closed_notices_are_not_news():
    record = sample(KANTINE)
    for status in ("cancelled", "closed"):
        assert section_of({**record, "status": status}, as_of=AS_OF, timezone="Europe/Copenhagen") is None
    assert section_of(sample(MADSERVICE_RODOVRE), as_of=AS_OF, timezone="Europe/Copenhagen") == "planning"


def test_reserved_lots_get_the_badge():
    profile = sample_profile("rent-fokus", regions=())
    store = matched_store([profile], [sample(LIMPIEZA)])
    [item] = digest_for(store, recipient(profile), period=PERIOD, as_of=date(2023, 5, 1), settings=SETTINGS).items
    assert item.reserved
    assert item.title == "CONTRATO DE SERVICIOS DE LIMPIEZA DE EDIFICIOS MUNICIPALES"  # no Danish or English title
    assert item.url == "https://ted.europa.eu/da/notice/-/detail/262891-2023"  # not the local file:// URL


def test_title_in_the_readers_language_where_the_notice_carries_one():
    record = {"id": "eforms:x", "title": "Titre", "language": "fr", "format": "eforms",
              "titles": {"fr": "Titre", "en": "English title", "da": "Dansk titel"}}
    assert choose_titles(record, language="da") == ("Dansk titel", None)
    assert choose_titles(record, language="en") == ("English title", None)
    assert choose_titles({**record, "titles": {"en": "English title"}}, language="da") == ("English title", None)
    assert choose_titles({**record, "titles": {}}, language="da") == ("Titre", None)


def test_links_are_only_ever_http():
    assert notice_link({"id": "web:x", "url": "javascript:alert(1)"}, language="da") is None
    assert notice_link({"id": "web:x", "url": "file:///etc/passwd"}, language="da") is None
    assert notice_link({"id": "ocds:x", "url": "https://example.org/n/1"}, language="da") == "https://example.org/n/1"
    assert notice_link({"id": "eforms:00665431-2023", "url": "file:///x.xml"}, language="en") == \
        "https://ted.europa.eu/en/notice/-/detail/665431-2023"


def test_periods_are_iso_weeks():
    assert parse_period("2026-W48") == (2026, 48)
    assert period_of(date(2026, 11, 23)) == "2026-W48"
    assert period_of(date(2027, 1, 1)) == "2026-W53"  # ISO years differ from calendar years
    for bad in ("2026-48", "2026-W54", "2025-W53", "W48"):
        with pytest.raises(PeriodError):
            parse_period(bad)
