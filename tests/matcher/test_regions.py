"""Regions that hold: where a lot is (place of performance, else the buyer's municipality,
else the buyer's country), and that a region-limited profile never gets a notice from
another country. Real notices; profiles as the enterprises write them."""

from __future__ import annotations

import pytest

from tendermatch.matcher import places
from tendermatch.matcher.engine import match_notices, score_notice
from tendermatch.matcher.profiles import ProfileError
from tests.conftest import SAMPLE
from tests.matcher.helpers import (
    KANTINE,
    LIMPIEZA,
    MADSERVICE_RODOVRE,
    agreement,
    folder_records,
    make_profile,
    sample,
    sample_profile,
    sample_profiles,
)


def test_a_foreign_notice_without_nuts_never_reaches_a_region_limited_profile():
    record = sample(LIMPIEZA)  # Ajuntament de Ripoll (ESP): building cleaning, no NUTS at all
    assert record["nuts"] == [] and all(not lot["nuts"] for lot in record["lots"])
    assert places.place_of(record, record["lots"][0]) == places.Place(("ES",), places.BUYER_COUNTRY)
    for regions in (("DK01",), ("DK",), ("København",)):
        assert score_notice(sample_profile("rent-fokus", regions=regions), record, min_relevance=0) is None
    # the same work for a profile without regions, or one that names Spain
    assert score_notice(sample_profile("rent-fokus", regions=()), record) is not None
    assert score_notice(sample_profile("rent-fokus", regions=("ES",)), record) is not None


def test_the_buyers_country_as_sources_write_it():
    for written, code in (("ESP", "ES"), ("ENGLAND", "UK"), ("United Kingdom", "UK"), ("GR", "EL"), ("DK", "DK"),
                          ("gb", "UK")):
        assert places.nuts_country(written) == code, written
    assert places.nuts_country("Narnia") is None and places.nuts_country(None) is None


def test_a_danish_buyer_without_nuts_is_placed_by_its_municipality():
    record = sample(KANTINE)  # Københavns Kommune, DK011
    for lot in record["lots"]:
        lot["nuts"] = []
    record["nuts"] = []
    record["buyer"] = {"name": "Roskilde Kommune", "country": "DK", "city": "4000 Roskilde"}
    place = places.place_of(record, record["lots"][0])
    assert place == places.Place(("DK021",), places.BUYER_MUNICIPALITY, "Roskilde")
    canteen = sample_profile("maaltidsvaerkstedet")  # regions DK01 (Hovedstaden)
    assert score_notice(canteen, record) is None
    for regions in (("DK02",), ("DK",), ("Roskilde",), ("DK021",)):
        match = score_notice(sample_profile("maaltidsvaerkstedet", regions=regions), record)
        assert match is not None, regions
        assert "The buyer is in Roskilde (Østsjælland (DK021)), in your area" in match.reasons
        assert match.facts["place"]["evidence"] == "buyer-municipality"
    assert score_notice(sample_profile("maaltidsvaerkstedet", regions=("Køge",)), record) is None
    # a postal district and a buyer named as a municipality are understood too
    assert places.municipality("2300 København S") == ("København", "DK011")
    assert places.municipality("Københavns Kommune") == ("København", "DK011")
    assert places.municipality("Kgs. Lyngby") == ("Lyngby-Taarbæk", "DK012")


def test_a_place_of_performance_decides_over_the_buyer():
    record = sample(MADSERVICE_RODOVRE)  # place of performance DK012 (Rødovre)
    record["buyer"] = {"name": "Roskilde Kommune", "country": "DK", "city": "Roskilde"}
    assert score_notice(sample_profile("maaltidsvaerkstedet"), record) is not None  # DK01 holds DK012
    match = score_notice(sample_profile("maaltidsvaerkstedet", regions=("Roskilde",)), record)
    assert match is None


def test_a_notice_that_says_nothing_of_its_place_is_sent_with_a_note():
    record = agreement("Mødeforplejning og catering")  # a municipality's own page: no buyer, no NUTS
    match = score_notice(sample_profile("maaltidsvaerkstedet"), record, as_of=None)
    assert match is not None
    assert "The place of performance is not given" in match.notes
    assert not any(reason.startswith(("Performed in", "The buyer is in", "The place")) for reason in match.reasons)


def test_a_country_only_place_is_a_note_not_a_reason():
    record = sample(KANTINE)
    for lot in record["lots"]:
        lot["nuts"] = []
    record["nuts"] = []
    record["buyer"] = {"name": "Statens It", "country": "DK", "city": None}
    match = score_notice(sample_profile("maaltidsvaerkstedet"), record)
    assert match is not None
    assert "The buyer is in Denmark, but the place of performance is not given: check it is in your area" in match.notes
    assert not any(reason.startswith("The buyer is in") for reason in match.reasons)


def test_profile_regions_may_be_countries_regions_or_municipalities():
    for regions in (["DK"], ["DK01"], ["DK011"], ["Roskilde"], ["København", "Frederiksberg"]):
        assert make_profile(keywords=["kantine"], regions=regions).regions == tuple(regions)
    with pytest.raises(ProfileError, match=r"regions.*Atlantis"):
        make_profile(keywords=["kantine"], regions=["Atlantis"])


def test_the_sample_profiles_get_only_notices_from_their_regions(sample_records):
    limited = [profile for profile in sample_profiles() if profile.regions]
    assert len(limited) >= 5
    matches = match_notices(limited, sample_records, as_of=None)
    assert matches
    for match in matches:
        place = match.facts["place"]
        assert all(code.startswith("DK") for code in place["codes"]), (match.profile_id, match.notice_id, place)


@pytest.fixture(scope="module")
def sample_records():
    return [record for folder in ("ted-dk", "eforms", "ted-api", "ocds") for record in folder_records(SAMPLE / folder)]


def test_a_buyer_of_the_wrong_shape_costs_only_its_own_notice():
    odd, good = sample(KANTINE), sample(MADSERVICE_RODOVRE)
    for lot in odd["lots"]:
        lot["nuts"] = []
    odd["nuts"] = []
    odd["buyer"] = "Københavns Kommune"  # text where a table belongs
    found = match_notices([sample_profile("maaltidsvaerkstedet")], [odd, good], as_of=None)
    assert {match.notice_id for match in found} == {odd["id"], good["id"]}
    assert "The place of performance is not given" in next(m for m in found if m.notice_id == odd["id"]).notes
