"""Dates, amounts and places in the reader's language; reasons worded from the match log's
facts in Danish and English, the one wording the digest, the match log and the console share."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from tendermatch.matcher.run import match_store
from tendermatch.store import Store
from tendermatch.wording import formats, reasons
from tests.matcher.helpers import KANTINE, LIMPIEZA, sample, sample_profile
from tests.notifier.helpers import AS_OF, fill


@pytest.mark.parametrize(("language", "expected"), [("da", "24. november 2026"), ("en", "24 November 2026")])
def test_dates(language, expected):
    assert formats.format_date(date(2026, 11, 24), language=language) == expected


def test_deadline_with_a_time_of_day_in_each_language():
    noon = datetime(2026, 5, 4, 12, 0, tzinfo=ZoneInfo("Europe/Copenhagen"))
    assert formats.format_deadline(noon, language="da") == "4. maj 2026 kl. 12.00"
    assert formats.format_deadline(noon, language="en") == "4 May 2026 at 12:00"
    assert formats.format_deadline(datetime(2026, 5, 4), language="da") == "4. maj 2026"  # midnight: a day


@pytest.mark.parametrize(("amount", "currency", "language", "expected"), [
    (1_500_000, "DKK", "da", "1.500.000 kr."),
    (1_500_000, "DKK", "en", "DKK 1,500,000"),
    (250_000.4, "EUR", "da", "250.000 EUR"),
    (250_000, "EUR", "en", "EUR 250,000"),
    (999, None, "da", "999 kr."),
])
def test_amounts(amount, currency, language, expected):
    assert formats.format_amount(amount, currency, language=language) == expected


def test_every_wording_exists_in_both_languages():
    for table in (reasons.FIELDS, reasons.SOCIAL, reasons.RESERVED, reasons.LANGUAGE_NAMES, reasons.COUNTRY_NAMES):
        assert set(table["da"]) == set(table["en"])


def test_places_are_named_from_the_nuts_list():
    assert formats.nuts_name("DK011", language="da") == "Byen København (DK011)"
    assert formats.nuts_name("DE212", language="en").endswith("(DE212)")
    assert formats.nuts_name("XX999", language="en") == "XX999"  # unknown: the code as given


def _facts(profile_id: str, relative: str, **changes) -> dict:
    store = Store.memory()
    fill(store, [sample(relative)])
    match_store(store, [sample_profile(profile_id, **changes)], as_of=AS_OF)
    rows = store.match_log(profile_id=profile_id)
    store.close()
    assert len(rows) == 1
    return rows[0]


def test_reasons_of_a_real_match_in_danish_and_english():
    row = _facts("maaltidsvaerkstedet", KANTINE)  # kantinedrift, CPV 55512000, 7.5 M DKK lot, DK011
    da = reasons.reason_texts(row["facts"], language="da")
    en = reasons.reason_texts(row["facts"], language="en")
    assert "Jeres søgeord »kantinedrift« står i delkontraktens titel" in da
    assert "Your keyword “kantinedrift” is in the lot title" in en
    assert "CPV 55512000 (Drift af kantiner) hører under jeres 55500000" in da
    assert "CPV 55512000 (Canteen management services) is within your 55500000" in en
    assert "Udføres i Byen København (DK011)" in da
    assert len(da) == len(en)
    # a lot larger than the enterprise's limit is a drawback: a note, never a reason it fits
    assert not any("gange jeres grænse" in reason for reason in da)
    notes_da = reasons.note_texts(row["facts"], language="da")
    notes_en = reasons.note_texts(row["facts"], language="en")
    assert any(note.startswith("Omkring 7.500.000 kr.: 2,5 gange jeres grænse på 3.000.000 kr.") for note in notes_da)
    assert any(note.startswith("About DKK 7,500,000: 2.5 times your limit of DKK 3,000,000") for note in notes_en)
    assert len(notes_da) == len(notes_en)


def test_reserved_and_social_reasons():
    row = _facts("rent-fokus", LIMPIEZA, regions=())  # cleaning lots reserved for sheltered workshops
    assert row["facts"]["reserved"] == ["res-ws"]
    assert any(reason.startswith("Forbeholdt beskyttede værksteder")
               for reason in reasons.reason_texts(row["facts"], language="da"))
    facts = {"social": ["clause", "opp"]}
    assert reasons.reason_texts(facts, language="en") == [
        "Social considerations: social clause (apprentices, trainees or the unemployed),"
        " employment opportunities for disadvantaged groups"]


def test_rows_without_facts_fall_back_to_the_logged_sentences():
    assert reasons.reason_texts({}, language="da", fallback=["CPV 1 is one of yours"]) == ["CPV 1 is one of yours"]


def test_another_concept_of_the_trade_is_worded_as_such_not_as_a_translation():
    related = {"term": "graphic design", "origin": "related", "field": "lot title", "found": "graphic design",
               "keyword": "tryksager", "language": "en", "source": "terms:graphic_design"}
    foreign = {**related, "term": "mise en page", "found": "mise en page", "language": "fr"}
    assert reasons.reason_texts({"keywords": [related, foreign]}, language="da") == [
        "»graphic design« i delkontraktens titel (samme branche som jeres søgeord »tryksager«)",
        "»mise en page« i delkontraktens titel (fransk, samme branche som jeres søgeord »tryksager«)"]
    assert reasons.reason_texts({"keywords": [related]}, language="en") == [
        "“graphic design” in the lot title (the same trade as your keyword “tryksager”)"]
