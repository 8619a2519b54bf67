"""The console's Danish: times in Europe/Copenhagen with weekday and month names, amounts
with thousands points, the store's codes in plain words."""

from __future__ import annotations

import pytest

from tendermatch.web.console.formatting import code_text, format_amount, format_time

ZONE = "Europe/Copenhagen"


@pytest.mark.parametrize(("stored", "shown"), [
    ("2025-03-03T11:00:00+00:00", "mandag 3. marts 2025 kl. 12.00"),  # UTC in the store, winter time
    ("2025-07-01T10:30:00+00:00", "tirsdag 1. juli 2025 kl. 12.30"),  # summer time
    ("2025-03-30T00:59:00+00:00", "søndag 30. marts 2025 kl. 01.59"),  # the minute before the clocks go forward
    ("2025-03-30T01:00:00+00:00", "søndag 30. marts 2025 kl. 03.00"),
    ("2016-04-06T13:00:00", "onsdag 6. april 2016 kl. 13.00"),  # a deadline as published: local already
    ("2025-12-24", "onsdag 24. december 2025"),
    ("", ""),
    ("ikke en dato", "ikke en dato"),
])
def test_times_are_copenhagen_time_in_danish_words(stored, shown):
    assert format_time(stored, timezone=ZONE) == shown


def test_times_in_english_by_the_switch():
    assert format_time("2025-03-03T11:00:00+00:00", timezone=ZONE, language="en") == "Monday 3 March 2025 at 12:00"


@pytest.mark.parametrize(("amount", "currency", "shown"), [
    (1250000, "DKK", "1.250.000 kr."), (999.6, None, "1.000 kr."), (37500000.0, "dkk", "37.500.000 kr."),
    (2000000, "EUR", "2.000.000 EUR"), (None, "DKK", ""), ("x", "DKK", ""),
])
def test_amounts_in_danish(amount, currency, shown):
    assert format_amount(amount, currency) == shown


def test_codes_in_plain_words():
    assert [code_text(code) for code in ("sent", "failed", "competition", "agreement", "crawl", "nyt")] == [
        "Sendt", "Fejlet", "Konkurrence", "Leverandøraftale", "Indsamling", "nyt"]


def test_every_kind_and_stage_of_the_schema_has_a_name_in_both_languages_and_a_filter():
    from typing import get_args

    from tendermatch.store import records
    from tendermatch.web.console import pages

    for code in (*get_args(records.NoticeKind), *get_args(records.Stage)):
        assert code_text(code) != code and code_text(code, language="en") != code, code
    assert set(pages.STAGES) == set(get_args(records.Stage)) and set(pages.KINDS) == set(get_args(records.NoticeKind))
