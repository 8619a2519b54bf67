"""Preferences, as paired tests: the same real notice, changed in one thing, must score
higher (or lower); ``match_notices`` then ranks the variants in that order. Scores are being
tuned, so only the order is asserted, never a number."""

from __future__ import annotations

import copy
from typing import Any

from tendermatch.matcher.engine import match_notices, score_notice
from tests.matcher.helpers import (
    FREDERICIA,
    KANTINE,
    LIMPIEZA,
    MADSERVICE_RODOVRE,
    make_profile,
    real_record,
    sample,
    sample_profile,
)


def variant(record: dict[str, Any], suffix: str) -> dict[str, Any]:
    """A deep copy under its own id (so several variants can share one table)."""
    changed = copy.deepcopy(record)
    changed["id"] = f"{record['id']}-{suffix}"
    return changed


def without_reservations(record: dict[str, Any]) -> dict[str, Any]:
    changed = variant(record, "open")
    changed["reserved"] = []
    for lot in changed["lots"]:
        lot["reserved"] = []
    return changed


def without_social(record: dict[str, Any]) -> dict[str, Any]:
    changed = variant(record, "plain")
    changed["social"] = []
    for lot in changed["lots"]:
        lot["social"] = []
    return changed


def with_value(record: dict[str, Any], amount: float, suffix: str) -> dict[str, Any]:
    changed = variant(record, suffix)
    changed["value"] = {"amount": amount, "currency": "DKK"}
    for lot in changed["lots"]:
        lot["value"] = {"amount": amount, "currency": "DKK"}
    return changed


def ranked_ids(profile, records, **kwargs) -> list[str]:
    matches = match_notices([profile], records, as_of=None, **kwargs)
    assert [match.rank for match in matches] == list(range(1, len(matches) + 1))
    return [match.notice_id for match in matches]


# -- (a) reserved for enterprises like the profile's ---------------------------------------


def test_a_lot_reserved_for_the_profile_scores_higher_than_the_same_lot_open_to_all():
    profile = sample_profile("rent-fokus", regions=())  # res-ws eligible
    real = sample(LIMPIEZA)  # lots 3 and 4 reserved res-ws
    open_to_all = without_reservations(real)
    reserved, plain = score_notice(profile, real), score_notice(profile, open_to_all)
    assert reserved is not None and plain is not None
    assert reserved.score > plain.score
    assert "Reserved for sheltered workshops and social integration, which you qualify as" in reserved.reasons
    assert not any(reason.startswith("Reserved for") for reason in plain.reasons)
    assert ranked_ids(profile, [open_to_all, real]) == [real["id"], open_to_all["id"]]


def test_reservation_lifts_a_danish_notice_for_an_eligible_profile():
    real = sample(FREDERICIA)  # every lot res-ws
    profile = make_profile(keywords=["beskæftigelsesindsats", "jobcenter"], cpv=["79611000"],
                           reserved_eligible=["res-ws", "res-pub-ser"])
    assert score_notice(profile, real).score > score_notice(profile, without_reservations(real)).score


def test_reservation_for_another_kind_of_enterprise_earns_nothing_but_exclusion():
    real = sample(FREDERICIA)
    public_service = make_profile(keywords=["beskæftigelsesindsats"], cpv=["79611000"],
                                  reserved_eligible=["res-pub-ser"])
    assert score_notice(public_service, real) is None
    assert score_notice(public_service, without_reservations(real)) is not None


# -- (b) social objectives and social clauses ------------------------------------------------


def test_a_social_objective_scores_higher_real_eforms_notice():
    real = real_record("eforms_real/op-ted_ted-rdf-conversion-pipeline/eforms_samples/eforms_sdk_v1.7/"
                  "eform_subtype_20/544961-2023.xml")  # "Tervon ateriapalvelut" (meal services), work-cond
    assert real["social"]
    profile = sample_profile("maaltidsvaerkstedet", regions=())
    social, plain = score_notice(profile, real), score_notice(profile, without_social(real))
    assert social is not None and plain is not None
    assert social.score > plain.score
    assert any(reason.startswith("Social considerations:") and "fair working conditions" in reason
               for reason in social.reasons)
    assert not any(reason.startswith("Social considerations") for reason in plain.reasons)


def test_a_social_clause_scores_higher_real_danish_notice():
    real = real_record("ted_r209/op-ted_ted-rdf-mapping/dk/075195-2021.xml")  # restaurationsdrift, Det Kgl. Teater
    assert "clause" in real["social"]
    profile = sample_profile("maaltidsvaerkstedet")
    social, plain = score_notice(profile, real), score_notice(profile, without_social(real))
    assert social is not None and plain is not None
    assert social.score > plain.score
    assert any("social clause (apprentices" in reason for reason in social.reasons)


def test_a_social_objective_on_the_notice_or_on_the_lot_scores_higher():
    profile = sample_profile("maaltidsvaerkstedet")
    real = sample(KANTINE)
    on_notice = variant(real, "acc")
    on_notice["social"] = ["acc-all"]
    on_lot = variant(real, "clause")
    for lot in on_lot["lots"]:
        lot["social"] = ["clause"]
    on_lot["social"] = ["clause"]
    base = score_notice(profile, real).score
    assert score_notice(profile, on_notice).score > base
    assert "Social considerations: accessibility for all" in score_notice(profile, on_notice).reasons
    assert score_notice(profile, on_lot).score > base
    ranked = ranked_ids(profile, [real, on_notice])
    assert ranked == [on_notice["id"], real["id"]]


# -- (c) size against max_value, (d) far above is still sent ---------------------------------


def test_smaller_lots_score_higher_and_far_too_large_ones_are_still_sent():
    profile = sample_profile("maaltidsvaerkstedet")  # max_value 3 M DKK
    rodovre = sample(MADSERVICE_RODOVRE)  # madservice, value not given
    real = with_value(rodovre, 7_200_000, "above")  # what Solrød's madservice was worth: above max_value
    small = with_value(rodovre, 500_000, "small")
    near = with_value(rodovre, 2_800_000, "near")
    far = with_value(rodovre, 300_000_000, "far")
    scores = {record["id"]: score_notice(profile, record) for record in (small, near, real, far)}
    assert all(match is not None for match in scores.values()), "a lot far above max_value is ranked low, not hidden"
    s_small, s_near, s_real, s_far = (scores[r["id"]].score for r in (small, near, real, far))
    assert s_small > s_near  # smaller under beats larger under
    assert s_near > s_real  # under beats above
    assert s_near > s_far and s_real >= s_far  # far above is lowest
    assert "within your limit" in "\n".join(scores[near["id"]].reasons)
    assert "times your limit" in "\n".join(scores[far["id"]].notes)
    assert ranked_ids(profile, [far, real, near, small]) == [small["id"], near["id"], real["id"], far["id"]]


def test_a_lot_far_above_max_value_is_sent_and_says_so():
    profile = make_profile(keywords=["kantinedrift"], cpv=["55500000"], max_value=100_000)
    huge = sample(KANTINE)  # 30 M and 7.5 M DKK: 75-300 times the maximum
    match = score_notice(profile, huge)
    assert match is not None
    assert "times your limit" in "\n".join(match.notes)


def test_without_max_value_size_does_not_matter():
    profile = sample_profile("maaltidsvaerkstedet", max_value=None)
    real = sample(MADSERVICE_RODOVRE)
    assert (score_notice(profile, with_value(real, 500_000, "s")).score
            == score_notice(profile, with_value(real, 300_000_000, "l")).score)


def test_the_smaller_lot_of_a_real_two_lot_notice_is_preferred():
    profile = sample_profile("maaltidsvaerkstedet", max_value=40_000_000)  # both lots under
    real = sample(KANTINE)  # lot 1 30 M, lot 2 7.5 M
    assert score_notice(profile, real).lot_id == "2"
    only_big = variant(real, "lot1")
    only_big["lots"] = [only_big["lots"][0]]
    only_small = variant(real, "lot2")
    only_small["lots"] = [only_small["lots"][1]]
    assert score_notice(profile, only_small).score > score_notice(profile, only_big).score


# -- combined: the ranking follows every preference at once ----------------------------------


def test_ranks_follow_the_preferences_in_one_table():
    profile = sample_profile("rent-fokus", regions=())
    real = sample(LIMPIEZA)  # reserved lots, value unknown
    plain = without_reservations(real)
    plain_small = with_value(plain, 400_000, "small")
    plain_far = with_value(plain, 90_000_000, "far")
    order = ranked_ids(profile, [plain_far, plain, real, plain_small])
    assert order.index(real["id"]) < order.index(plain["id"])
    assert order.index(plain_small["id"]) < order.index(plain["id"]) < order.index(plain_far["id"])
    assert len(order) == 4
