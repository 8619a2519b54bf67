"""Other work: a tender title may name, in a trade's own words, work its enterprises do not
do ("limpieza industrial", "Jongerenwerk"). Such a lot is not sent unless its title also
names the enterprise's own work apart. Real notices; the phrases are ``data/other_work.toml``."""

from __future__ import annotations

import pytest

from tendermatch.matcher import bridge
from tendermatch.matcher.engine import match_notices, score_notice
from tendermatch.matcher.terms import other_work_terms
from tendermatch.matcher.text import content_words
from tests.matcher.helpers import make_profile, real_record

SPANISH_INDUSTRIAL_CLEANING = "ted_r209/op-ted_ted-rdf-mapping/contract_notices_all_countries/231545-2021.xml"
DUTCH_DISTRICT_TEAM = "ted_r209/op-ted_ted-rdf-mapping/prior_information_notices_all_countries/181366-2022.xml"
FINNISH_CHILD_WELFARE = "ted_r209/op-ted_ted-rdf-mapping/prior_information_notices_all_countries/166341-2019.xml"

CLEANING = {"keywords": ["rengøring", "erhvervsrengøring"], "cpv": ["90910000"], "regions": []}
SHELTER = {"keywords": ["herberg", "bostøtte", "socialt udsatte"], "cpv": ["85310000"], "regions": []}


def test_industrial_cleaning_is_not_sent_to_a_premises_cleaning_firm():
    record = real_record(SPANISH_INDUSTRIAL_CLEANING)
    assert record["title"].startswith("Servicio de limpieza industrial de equipos")
    assert record["cpv"] == ["90910000"]  # coded as cleaning services: the code alone cannot tell
    assert score_notice(make_profile(**CLEANING), record) is None
    assert "limpieza industrial" in {item.text for item in bridge.other_work("cleaning")}
    # A firm that names that work among its keywords gets it: the phrase no longer holds.
    industrial = make_profile(**{**CLEANING, "keywords": ["rengøring", "limpieza industrial"]})
    assert "limpieza industrial" not in {term.text for term in other_work_terms(industrial)}
    assert score_notice(industrial, record) is not None


def test_a_title_that_also_names_the_enterprises_own_work_apart_is_sent():
    record = real_record(DUTCH_DISTRICT_TEAM)
    assert record["title"] == "220038GDD Buurtwerk, Jongerenwerk en Sociaal Wijkteam Dordrecht"
    shelter = make_profile(**SHELTER)
    assert "jongerenwerk" in {term.text for term in other_work_terms(shelter)}  # youth work: not theirs
    match = score_notice(shelter, record)
    assert match is not None  # the social district team is
    assert any(item["found"] == "sociaal wijkteam" for item in match.facts["keywords"])


def test_a_lot_title_naming_the_own_work_does_not_free_a_notice_titled_with_other_work():
    # "Lastensuojelun ja sosiaalihuollon tukipalvelujen hankinta": support services for child
    # welfare. Its lot "Ammatillinen tukihenkilötoiminta" (support persons) is part of that
    # child-welfare work: the notice title names the other work and nothing else.
    record = real_record(FINNISH_CHILD_WELFARE)
    assert record["title"].startswith("Tietopyyntö: Lastensuojelun ja sosiaalihuollon")
    assert any(lot["title"] == "Ammatillinen tukihenkilötoiminta" for lot in record["lots"])
    shelter = make_profile(**{**SHELTER, "keywords": ["støtte-kontaktperson", *SHELTER["keywords"]]})
    assert score_notice(shelter, record) is None
    lot = next(lot for lot in record["lots"] if lot["title"] == "Ammatillinen tukihenkilötoiminta")
    # The same lot under a notice title of its own is the enterprise's work.
    assert score_notice(shelter, {**record, "title": lot["title"], "lots": [lot]}) is not None


def _with_lots(record: dict, title: str, language: str, lot_titles: list[str | None]) -> dict:
    """The notice with another title and one lot per title (the test's variant, in memory)."""
    first = record["lots"][0]
    return {**record, "title": title, "language": language,
            "lots": [{**first, "lot_id": str(number), "title": lot_title}
                     for number, lot_title in enumerate(lot_titles, start=1)]}


@pytest.mark.parametrize(("title", "language", "lot_titles", "sent_lot"), [
    # A lot whose own title holds the other work is that work, whatever the notice title names.
    ("Limpieza viaria y limpieza de edificios municipales", "es",
     ["Limpieza viaria", "Limpieza de edificios municipales"], "2"),
    ("Limpieza viaria y limpieza de edificios municipales", "es", ["Limpieza viaria"], None),
    # A notice that splits its works between lots: the lot of the enterprise's work is sent.
    ("Street sweeping and winter maintenance", "en",
     ["Lot 1 street sweeping", "Lot 2 office cleaning of the town hall"], "2"),
    # A sibling lot without a title says nothing of how the notice splits its works.
    ("Street sweeping and winter maintenance", "en", [None, "Lot 2 office cleaning of the town hall"], None),
])
def test_the_lot_titles_decide_which_lot_is_the_enterprises_work(title, language, lot_titles, sent_lot):
    record = _with_lots(real_record(SPANISH_INDUSTRIAL_CLEANING), title, language, lot_titles)
    match = score_notice(make_profile(**CLEANING), record)
    assert (match.lot_id if match else None) == sent_lot


def _retitled(record: dict, title: str, language: str) -> dict:
    """The notice with another title on it and its lots (the test's variant, in memory)."""
    return {**record, "title": title, "language": language, "lots": [{**lot, "title": title} for lot in record["lots"]]}


def test_the_own_work_must_be_named_in_words_the_other_work_does_not_use():
    record = real_record(SPANISH_INDUSTRIAL_CLEANING)
    cleaning = make_profile(**CLEANING)
    # A compound: "rengøring" is found inside "gaderengøring" (street cleaning), no word of its own.
    assert score_notice(cleaning, _retitled(record, "Gaderengøring i Aarhus Kommune", "da")) is None
    assert score_notice(cleaning, _retitled(record, "Vinduespudsning og gaderengøring", "da")) is not None
    # A second "cleaning" is the firm's own; a single one belongs to the street.
    assert score_notice(cleaning, _retitled(record, "Street cleaning and office cleaning", "en")) is not None
    assert score_notice(cleaning, _retitled(record, "Street cleaning of the office district", "en")) is None


def test_another_trades_work_that_is_the_profiles_own_term_holds_no_veto():
    # "dry cleaning" is other work for a cleaning firm and a laundry's own work: a profile
    # of both trades keeps it.
    assert "dry cleaning" in {item.text for item in bridge.other_work("cleaning")}
    both = make_profile(keywords=["rengøring", "vaskeri"], regions=[])
    assert "dry cleaning" in {term.text for term in other_work_terms(make_profile(**CLEANING))}
    assert "dry cleaning" not in {term.text for term in other_work_terms(both)}


def test_no_other_work_phrase_is_a_term_of_its_own_trade():
    trades = bridge._trades()
    own = {(trades[name], language, bridge.stems_key(content_words(term), language))
           for name, languages in bridge._concepts().items() for language, terms in languages.items()
           for term in terms if content_words(term)}
    clashes = [(trade, item.language, item.text) for trade in bridge._other_work_file()
               for item in bridge.other_work(trade)
               if (trade, item.language, bridge.stems_key(item.words, item.language)) in own]
    assert clashes == []


def test_odd_values_meet_the_check_without_costing_another_notice():
    industrial = real_record(SPANISH_INDUSTRIAL_CLEANING)
    good = real_record("ted_r209/op-ted_ted-rdf-mapping/contract_notices_all_countries/389914-2021.xml")
    # Lots without titles: the notice's title speaks for them, and it names industrial cleaning.
    untitled = {**industrial, "id": "untitled", "lots": [{**lot, "title": None} for lot in industrial["lots"]]}
    # A language that is not a language code: no phrase applies, nothing breaks.
    odd_language = {**industrial, "id": "odd-language", "language": 5}
    found = {match.notice_id for match in match_notices([make_profile(**CLEANING)], [untitled, odd_language, good],
                                                        as_of=None)}
    assert "untitled" not in found and good["id"] in found


def test_green_space_care_whose_compound_ends_in_a_cleaning_word_is_not_sent_to_a_cleaning_firm():
    # Austrian "Grünraumpflege" (green-space care) ends in "Raumpflege" (premises cleaning).
    record = _retitled(real_record(SPANISH_INDUSTRIAL_CLEANING), "Grünraumpflege der städtischen Wohnanlagen", "de")
    assert score_notice(make_profile(**CLEANING), record) is None
    green = make_profile(keywords=["grønne områder", "græsslåning"], cpv=["77310000"], regions=[])
    assert score_notice(green, record) is not None
