"""Each scoring rule on real notices: what is sent, what is not, and what the reasons say.

Scores and thresholds are being tuned: these tests assert matched / not matched, which lot,
and what the reasons mention, never a score. Where a test is about a gate rather than about
relevance, it passes ``min_relevance=0`` so that only the gate decides.
"""

from __future__ import annotations

import math
from datetime import date

import pytest

from tendermatch.matcher import rules
from tendermatch.matcher.engine import score_notice
from tests.matcher.helpers import (
    FREDERICIA,
    KANTINE,
    LIMPIEZA,
    LUFTHAVN,
    MADSERVICE_RODOVRE,
    MADSERVICE_SOLROD,
    WALES,
    agreement,
    make_profile,
    real_record,
    reasons_text,
    sample,
    sample_profile,
)

# Profiles that fit the real notices well (a keyword in the title and a CPV code in the
# profile's branch), so that whether they are sent depends on the rule under test, not on
# where the relevance threshold is tuned to.
CANTEEN = {"keywords": ["kantinedrift"], "cpv": ["55500000"]}  # ted:095237-2016
MEALS = {"keywords": ["madservice"], "cpv": ["55500000"]}  # ted:433955-2016
JOBS = {"keywords": ["beskæftigelsesindsats"], "cpv": ["79611000"], "reserved_eligible": ["res-ws"]}  # Fredericia


def profile(base: dict, **changes):
    return make_profile(**{**base, **changes})


# -- text ----------------------------------------------------------------------------------


def test_a_keyword_in_the_title_matches_and_the_reason_says_where():
    match = score_notice(profile(MEALS), sample(MADSERVICE_RODOVRE))
    assert match is not None
    assert match.notice_id == "ted:433955-2016" and match.lot_id == "1" and match.rank == 1
    assert 0 < match.score <= 100
    assert any(reason.startswith('Your keyword “madservice” is in the') and "title" in reason
               for reason in match.reasons)
    assert match.facts["keywords"][0]["field"] in ("lot title", "title")


def test_a_keyword_in_the_title_opens_the_gate_on_its_own():
    # no CPV code at all: the title keyword alone lets the notice through the gate
    assert score_notice(make_profile(keywords=["madservice"]), sample(MADSERVICE_RODOVRE), min_relevance=0) is not None


def test_the_keyword_in_the_title_raises_the_score():
    record = sample(MADSERVICE_RODOVRE)
    with_keyword = score_notice(profile(MEALS), record)
    cpv_only = score_notice(make_profile(cpv=["55500000"]), record, min_relevance=0)
    assert with_keyword is not None and cpv_only is not None
    assert with_keyword.score > cpv_only.score
    real = sample_profile("maaltidsvaerkstedet")
    # Without a keyword of the trade (a catering keyword also finds "madservice", another
    # concept of its trade), only the CPV code is left: the notice is not sent at all.
    without = sample_profile("maaltidsvaerkstedet", keywords=("vinduespudsning",))
    assert score_notice(real, record) is not None and score_notice(without, record, min_relevance=0) is None


def test_a_danish_compound_matches_its_first_part_on_a_real_notice():
    # "Kontrakt om kantinedrift for Vejlandshuset": the profile says only "kantine"
    match = score_notice(make_profile(keywords=["kantine"], cpv=["55500000"]), sample(KANTINE))
    assert match is not None
    assert any('“kantine”' in reason and "(as “kantinedrift”)" in reason for reason in match.reasons), match.reasons
    assert any(item["keyword"] == "kantine" for item in match.facts["keywords"])


def test_an_inflected_danish_word_matches():
    # "Udbud på kantinedriften i Københavns Lufthavne" (here as if still open): the profile
    # writes "kantinedrift", the title has the definite form
    record = {**sample(LUFTHAVN), "stage": "competition", "status": "active"}
    match = score_notice(profile(CANTEEN), record)
    assert match is not None
    assert any('“kantinedrift”' in reason and "(as “kantinedriften”)" in reason for reason in match.reasons)


def test_a_misspelt_keyword_still_finds_the_notice():
    # one letter missing: "kantindrift"
    match = score_notice(make_profile(keywords=["kantindrift"], cpv=["55500000"]), sample(KANTINE))
    assert match is not None
    assert any('“kantindrift”' in reason and "(as “kantinedrift”)" in reason for reason in match.reasons)


def test_generic_words_alone_never_open_the_gate():
    record = sample(MADSERVICE_RODOVRE)  # "madservice"; Danish title "Levering af mad ud af huset"
    for keywords in (["service", "levering"], ["levering", "ydelser", "drift", "udbud"], ["service"]):
        assert score_notice(make_profile(keywords=keywords), record, min_relevance=0) is None, keywords
    # ... while one specific word does
    assert score_notice(make_profile(keywords=["service", "madservice"]), record, min_relevance=0) is not None


def test_description_words_alone_never_open_the_gate():
    description = "Vi laver madservice og madlevering til visiterede borgere i Rødovre Kommune."
    lonely = make_profile(keywords=["vinduespudsning"], description=description)
    assert score_notice(lonely, sample(MADSERVICE_RODOVRE), min_relevance=0) is None


def test_a_keyword_not_in_the_notice_does_not_match():
    assert score_notice(make_profile(keywords=["vinduespudsning", "snerydning"]), sample(KANTINE),
                        min_relevance=0) is None


# -- CPV -------------------------------------------------------------------------------------


def test_a_cpv_code_in_the_profile_branch_opens_the_gate_without_keywords():
    match = score_notice(make_profile(cpv=["55500000"]), sample(KANTINE), min_relevance=0)  # notice: 55512000
    assert match is not None
    assert match.facts["cpv"] == {"relation": "within", "profile_code": "55500000", "code": "55512000",
                                  "labels": {"da": "Drift af kantiner", "en": "Canteen management services"}}
    assert "CPV 55512000 (Canteen management services) is within your 55500000" in match.reasons


def test_an_exact_cpv_code_is_named_as_one_of_yours():
    match = score_notice(make_profile(keywords=["kantinedrift"], cpv=["55512000"]), sample(KANTINE))
    assert match is not None and "CPV 55512000 (Canteen management services) is one of your codes" in match.reasons


def test_a_merely_related_code_alone_is_not_enough():
    # 55300000 (restaurant services) shares only "55" with the notice's 55512000
    assert score_notice(make_profile(cpv=["55300000"]), sample(KANTINE), min_relevance=0) is None
    assert score_notice(make_profile(cpv=["90911000"]), sample(KANTINE), min_relevance=0) is None


def test_cpv_relation_raises_the_score():
    record = sample(KANTINE)
    within = score_notice(make_profile(keywords=["kantinedrift"], cpv=["55500000"]), record)
    unrelated = score_notice(make_profile(keywords=["kantinedrift"], cpv=["90911000"]), record, min_relevance=0)
    assert within is not None and unrelated is not None
    assert within.score > unrelated.score
    assert not any(reason.startswith("CPV") for reason in unrelated.reasons)


# -- regions ---------------------------------------------------------------------------------


def test_a_notice_outside_the_profile_regions_is_not_sent():
    fredericia = sample(FREDERICIA)  # DK032 (Syddanmark)
    assert fredericia["nuts"] == ["DK032"]
    assert score_notice(profile(JOBS, regions=["DK01"]), fredericia) is None
    assert score_notice(profile(JOBS, regions=["DK01", "DK02"]), fredericia, min_relevance=0) is None
    for regions in (["DK03"], ["DK032"], ["DK"], ["DK01", "DK03"], []):
        assert score_notice(profile(JOBS, regions=regions), fredericia) is not None, regions


def test_sample_profile_in_hovedstaden_does_not_get_a_notice_in_sjaelland():
    solrod = sample(MADSERVICE_SOLROD)  # "Madservice", DK021
    maaltid = sample_profile("maaltidsvaerkstedet")  # DK01
    assert score_notice(maaltid, solrod, min_relevance=0) is None
    assert score_notice(sample_profile("maaltidsvaerkstedet", regions=()), solrod, min_relevance=0) is not None
    # ... and Rødovre (DK012) is inside DK01
    match = score_notice(maaltid, sample(MADSERVICE_RODOVRE))
    assert match is not None and "Performed in Københavns omegn (DK012)" in match.reasons


# -- exclude ---------------------------------------------------------------------------------


def test_an_exclude_word_vetoes_the_notice():
    record = sample(KANTINE)
    assert score_notice(profile(CANTEEN), record) is not None
    assert score_notice(profile(CANTEEN, exclude=["Amagerværket"]), record, min_relevance=0) is None
    # folded and as the start of a compound, like keywords
    assert score_notice(profile(CANTEEN, exclude=["AMAGERVAERK"]), record, min_relevance=0) is None
    assert score_notice(profile(CANTEEN, exclude=["kantine"]), record, min_relevance=0) is None
    # an exclude word that is not in the notice changes nothing
    assert score_notice(profile(CANTEEN, exclude=["dyrefoder"]), record) is not None


def test_the_sample_exclude_words_do_not_veto_their_own_trade():
    # Måltidsværkstedet excludes "dyrefoder" / "animal feed": not in a canteen notice
    assert score_notice(sample_profile("maaltidsvaerkstedet"), sample(KANTINE)) is not None


# -- stages, status, dates -------------------------------------------------------------------


def test_a_result_that_was_cancelled_is_not_sent():
    record = sample(LUFTHAVN)  # "Udbud på kantinedriften i Københavns Lufthavne A/S."
    assert (record["stage"], record["status"]) == ("result", "cancelled")
    maaltid = sample_profile("maaltidsvaerkstedet")
    assert score_notice(maaltid, record, min_relevance=0) is None
    assert rules.skip_reason(record, as_of=None) is not None
    # the same notice while still open would have been sent
    assert score_notice(maaltid, {**record, "stage": "competition", "status": "active"}) is not None


@pytest.mark.parametrize("change", [{"stage": "result"}, {"stage": "cont-modif"}, {"stage": "dir-awa-pre"},
                                    {"status": "cancelled"}, {"status": "closed"}])
def test_closed_stages_and_statuses_are_not_sent(change):
    record = sample(KANTINE)
    assert score_notice(profile(CANTEEN), record) is not None
    assert score_notice(profile(CANTEEN), {**record, **change}, min_relevance=0) is None
    assert rules.skip_reason({**record, **change}, as_of=None)


@pytest.mark.parametrize("stage", ["planning", "competition", "change"])
def test_open_stages_are_sent(stage):
    assert score_notice(profile(CANTEEN), {**sample(KANTINE), "stage": stage}) is not None


def test_a_real_contract_modification_and_a_real_direct_award_are_not_sent():
    veat = sample("eforms/sdk-veat_24.xml")  # voluntary ex-ante transparency: a direct award
    assert veat["stage"] == "dir-awa-pre"
    codes = make_profile(cpv=veat["cpv"][:1])
    assert score_notice(codes, veat, min_relevance=0) is None
    assert score_notice(codes, {**veat, "stage": "competition"}, min_relevance=0) is not None

    modification = real_record("eforms_sdk/examples/notices/can-modif_24_duration.xml")
    assert modification["stage"] == "cont-modif"
    codes = make_profile(cpv=modification["cpv"][:1])
    assert score_notice(codes, modification, min_relevance=0) is None
    assert score_notice(codes, {**modification, "stage": "competition"}, min_relevance=0) is not None


def test_a_notice_whose_deadline_has_passed_is_not_sent_but_was_before():
    record = sample(KANTINE)  # deadline 2016-04-06T13:00
    assert score_notice(profile(CANTEEN), record, as_of=date(2016, 4, 7), min_relevance=0) is None
    assert rules.skip_reason(record, as_of=date(2016, 4, 7)) == "deadline passed 2016-04-06"
    assert score_notice(profile(CANTEEN), record, as_of=date(2016, 4, 6)) is not None  # the last day is open
    assert score_notice(profile(CANTEEN), record, as_of=date(2016, 3, 22)) is not None
    assert score_notice(profile(CANTEEN), record, as_of=None) is not None  # no date check
    assert rules.skip_reason(record, as_of=date(2016, 4, 6)) is None


def test_a_planning_notice_without_deadline_is_always_open():
    record = sample(MADSERVICE_RODOVRE)
    assert record["stage"] == "planning" and record["deadline"] is None
    assert score_notice(profile(MEALS), record, as_of=date(2030, 1, 1)) is not None


# -- agreements ------------------------------------------------------------------------------


def test_a_supplier_agreement_matches_and_says_when_it_expires():
    record = agreement("Mødeforplejning og catering")  # Københavns Kommune, expires 2028-03-01
    assert record["kind"] == "agreement" and record["stage"] == "result"
    maaltid = sample_profile("maaltidsvaerkstedet")
    match = score_notice(maaltid, record, as_of=date(2027, 1, 1))
    assert match is not None
    assert match.kind == "agreement"
    assert match.expires == "2028-03-01"
    expiring = [reason for reason in match.reasons if "expires" in reason]
    assert len(expiring) == 1 and "1 March 2028" in expiring[0]
    assert "Madværket" in expiring[0]  # the supplier holding it
    assert "mødeforplejning" in reasons_text(match).lower()


def test_an_expired_agreement_is_not_sent():
    record = agreement("Mødeforplejning og catering")
    maaltid = sample_profile("maaltidsvaerkstedet")
    assert score_notice(maaltid, record, as_of=date(2028, 3, 2), min_relevance=0) is None
    assert rules.skip_reason(record, as_of=date(2028, 3, 2)) == "agreement expired 2028-03-01"
    assert score_notice(maaltid, record, as_of=date(2028, 3, 1)) is not None


def test_an_agreement_for_another_trade_is_not_sent():
    record = agreement("Flytte- og magasineringsydelser")
    for profile_id in ("maaltidsvaerkstedet", "rent-fokus", "byens-cykelbud"):  # the courier excludes "flytning"
        assert score_notice(sample_profile(profile_id), record, min_relevance=0) is None, profile_id


def test_a_tender_has_no_expiry():
    match = score_notice(profile(CANTEEN), sample(KANTINE))
    assert match.kind == "tender" and match.expires is None
    assert not any("expires" in reason for reason in match.reasons)


# -- reserved lots ---------------------------------------------------------------------------


def test_a_lot_reserved_for_others_is_never_sent():
    record = sample(LIMPIEZA)  # lots 3 and 4 reserved res-ws, 1 and 2 open to all
    reserved = {lot["lot_id"] for lot in record["lots"] if lot["reserved"]}
    assert reserved == {"LOT-0003", "LOT-0004"}
    not_eligible = sample_profile("rent-fokus", reserved_eligible=(), regions=())
    match = score_notice(not_eligible, record, min_relevance=0)
    assert match is not None and match.lot_id not in reserved
    assert not any(reason.startswith("Reserved for") for reason in match.reasons)
    # with every lot reserved, the notice is not sent at all
    for lot in record["lots"]:
        lot["reserved"] = ["res-ws"]
    assert score_notice(not_eligible, record, min_relevance=0) is None
    assert score_notice(sample_profile("rent-fokus", reserved_eligible=("res-pub-ser",), regions=()), record,
                        min_relevance=0) is None
    assert score_notice(sample_profile("rent-fokus", regions=()), record) is not None  # res-ws eligible


def test_a_notice_whose_every_lot_is_reserved_reaches_only_eligible_profiles():
    record = sample(FREDERICIA)  # all 3 lots res-ws
    assert score_notice(profile(JOBS, reserved_eligible=[]), record, min_relevance=0) is None
    match = score_notice(profile(JOBS), record)
    assert match is not None
    assert "Reserved for sheltered workshops and social integration, which you qualify as" in match.reasons
    assert match.facts["reserved"] == ["res-ws"]


# -- reasons about the lot and its value -----------------------------------------------------


def test_reasons_name_the_keyword_the_cpv_relation_the_lot_and_its_value_against_max_value():
    match = score_notice(sample_profile("maaltidsvaerkstedet"), sample(KANTINE))
    assert match is not None
    text = reasons_text(match)
    assert 'Your keyword “kantinedrift” is in the lot title' in text
    assert "CPV 55512000 (Canteen management services) is within your 55500000" in text
    # a lot above the maximum is a drawback: a note, never a reason it fits
    assert not any(reason.startswith("Lot ") for reason in match.reasons)
    lot_note = next(note for note in match.notes if note.startswith("Lot "))
    assert lot_note.startswith('Lot 2 “Kontrakt om kantinedrift for Amagerværket”')
    assert "DKK 7,500,000" in lot_note and "times your limit of DKK 3,000,000" in lot_note
    assert match.facts["lot"] == {"lot_id": "2", "lots": 2, "title": "Kontrakt om kantinedrift for Amagerværket",
                                  "value_dkk": 7_500_000, "max_value": 3_000_000}


def test_a_lot_under_max_value_is_said_to_be_within_it():
    match = score_notice(sample_profile("maaltidsvaerkstedet", max_value=10_000_000), sample(KANTINE))
    lot_reason = next(reason for reason in match.reasons if reason.startswith("Lot "))
    assert "about DKK 7,500,000: within your limit of DKK 10,000,000" in lot_reason


def test_a_single_lot_notice_says_the_contract_and_an_unknown_value_is_said():
    match = score_notice(profile(MEALS, max_value=1_000_000), sample(MADSERVICE_RODOVRE))
    assert "The contract: value not given" in match.notes
    solrod = score_notice(make_profile(keywords=["madservice"], cpv=["98514000"]), sample(MADSERVICE_SOLROD))
    assert solrod is not None
    assert any(reason.startswith("The contract: about DKK 7,200,000") for reason in solrod.reasons)


def test_values_in_other_currencies_are_compared_in_dkk():
    assert rules.to_dkk(100.0, "EUR", rules.DEFAULT_RATES) == pytest.approx(100 * rules.DEFAULT_RATES["EUR"])
    assert rules.to_dkk(100.0, "DKK", rules.DEFAULT_RATES) == 100.0
    assert math.isnan(rules.to_dkk(100.0, "XYZ", rules.DEFAULT_RATES))
    assert math.isnan(rules.to_dkk(None, "DKK", rules.DEFAULT_RATES))
    record = sample(KANTINE)
    for lot in record["lots"]:
        lot["value"] = {"amount": lot["value"]["amount"] / 10, "currency": "EUR"}  # 3 M EUR and 0.75 M EUR
    match = score_notice(sample_profile("maaltidsvaerkstedet", max_value=10_000_000), record)
    assert match.facts["lot"]["value_dkk"] == round(750_000 * rules.DEFAULT_RATES["EUR"])
    assert "within your limit" in reasons_text(match)


# -- multi-lot notices: the best lot for the profile -----------------------------------------


def test_a_multi_lot_notice_is_sent_once_through_the_lot_nearest_the_profile_size():
    # lot 1 (Vejlandshuset) 30 M DKK, lot 2 (Amagerværket) 7.5 M DKK; max_value 3 M
    match = score_notice(sample_profile("maaltidsvaerkstedet"), sample(KANTINE))
    assert match.lot_id == "2"
    # a profile that can take 40 M gets the same lot: the smaller one
    assert score_notice(sample_profile("maaltidsvaerkstedet", max_value=40_000_000), sample(KANTINE)).lot_id == "2"
    # swap the values: now lot 1 is the better fit
    record = sample(KANTINE)
    record["lots"][0]["value"], record["lots"][1]["value"] = record["lots"][1]["value"], record["lots"][0]["value"]
    assert score_notice(sample_profile("maaltidsvaerkstedet"), record).lot_id == "1"


def test_a_multi_lot_notice_is_sent_through_the_lot_whose_title_fits():
    # Fredericia: lot 3 is "Delområde 3: Fleksjob"; the notice's description names all three
    match = score_notice(profile(JOBS, keywords=["fleksjob"]), sample(FREDERICIA))
    assert match is not None and match.lot_id == "3"
    assert 'Your keyword “fleksjob” is in the lot title' in match.reasons
    assert any(note.startswith('Lot 3 “Delområde 3: Fleksjob”') for note in match.notes)


def test_a_multi_lot_notice_prefers_the_lot_reserved_for_the_profile():
    match = score_notice(sample_profile("rent-fokus", regions=()), sample(LIMPIEZA))
    assert match.lot_id in ("LOT-0003", "LOT-0004")
    assert "Reserved for sheltered workshops and social integration, which you qualify as" in match.reasons


# -- false friends: words a letter or two from the profile's are other trades -----------------


def test_a_courier_is_sent_courier_work_but_not_meal_service_or_passenger_transport():
    # "budservice" / "madservice", "messenger" / "passenger": other trades, not typos
    courier = sample_profile("byens-cykelbud", regions=())
    assert score_notice(courier, sample(MADSERVICE_RODOVRE), min_relevance=0) is None
    ocds = "ocds/contracts_finder_search_package_CFSearchStr.json"
    school_transport = sample(ocds, "ocds:ocds-b5fd17-8f3244de-9267-4db2-95fe-089010d5aa5f")
    assert "Transport" in school_transport["title"]
    assert score_notice(courier, school_transport) is None
    waste_sacks = sample(ocds, "ocds:ocds-b5fd17-66376a7e-737a-447f-aee9-2704a088b44a")
    match = score_notice(courier, waste_sacks, min_relevance=0)  # "Courier Service for Delivery of Waste Sacks"
    assert match is not None and 'Your keyword “courier” is in the lot title' in match.reasons


# -- bugs found while writing these tests, now fixed (kept so they stay fixed); one known limit ---


def test_an_exclude_phrase_is_not_assembled_from_two_different_cpv_labels():
    record = sample(FREDERICIA)  # "Udbud af beskæftigelsesindsats", CPV 79611000 + 75111100, reserved res-ws
    assert score_notice(sample_profile("broen-til-job", regions=(), exclude=()), record) is not None
    # exclude = ["rekruttering af ledere", "executive search"]: neither phrase is in the notice
    assert score_notice(sample_profile("broen-til-job", regions=()), record) is not None


def test_a_single_lot_notice_reserved_at_notice_level_is_treated_as_reserved():
    record = sample(WALES, "ocds:ocds-kuma6s-148223")  # "Windows and Porches Programme", reserved res-ws
    assert record["reserved"] == ["res-ws"] and record["lots"][0]["reserved"] == []
    windows = {"keywords": ["windows", "porches"], "cpv": ["45421100"]}
    assert score_notice(make_profile(**windows), record, min_relevance=0) is None
    eligible = score_notice(make_profile(**windows, reserved_eligible=["res-ws"]), record, min_relevance=0)
    assert eligible is not None
    assert "Reserved for sheltered workshops and social integration, which you qualify as" in eligible.reasons


def test_a_profile_with_only_cpv_codes_is_sent_a_notice_coded_with_its_code():
    record = sample(KANTINE)  # CPV 55512000 on both lots
    assert score_notice(make_profile(cpv=["55512000"]), record, min_relevance=0) is not None  # the gate is open
    assert score_notice(make_profile(cpv=["55512000"]), record) is not None
    assert score_notice(make_profile(cpv=["55500000"]), record) is not None


def test_a_notice_placed_in_all_of_denmark_reaches_a_copenhagen_profile():
    record = sample("ted-dk/165579-2021.xml")  # "... husstandsindsamlet plast mv. fra ARGO, KBH og VF", NUTS DK0
    assert record["nuts"] == ["DK0"]
    plastic = {"keywords": ["plast"], "cpv": ["90510000"]}
    assert score_notice(make_profile(**plastic), record, min_relevance=0) is not None
    assert score_notice(make_profile(**plastic, regions=["DK01"]), record, min_relevance=0) is not None


@pytest.mark.xfail(strict=True, reason="a lot whose own title names the keyword does not beat a sibling lot that"
                   " only shares the notice title: ties go to the first lot")
def test_the_lot_named_in_its_own_title_is_chosen_over_a_sibling():
    # "Kontrakt om kantinedrift for Vejlandshuset og/eller Amagerværket": lot 2 is Amagerværket's
    match = score_notice(profile(CANTEEN, keywords=["kantinedrift", "Amagerværket"]), sample(KANTINE))
    assert match is not None and match.lot_id == "2"
