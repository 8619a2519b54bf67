"""Evidence that is not counted twice, and is weighed by how much it says: a CPV code's
label is code evidence, not text; a term in every other notice counts less; a lot has the
notice's codes; BT-736 reserved execution is not a reserved competition. Real notices."""

from __future__ import annotations

import pytest

from tendermatch.matcher import rules
from tendermatch.matcher.engine import match_notices, score_notice
from tendermatch.matcher.table import NoticeTable, lot_codes, phrase_span
from tendermatch.matcher.terms import profile_concepts
from tests.conftest import SAMPLE
from tests.matcher.helpers import KANTINE, folder_records, make_profile, real_record, sample

FOSTERING = "ocds:ocds-b5fd17-7445ba73-19af-4b2c-9156-bc70b3b4ee87"  # "Provision for Children looked after", 85300000
SOCIAL_25 = "eforms_sdk/examples/notices/cn-social_25.xml"  # BT-736 reserved execution 'yes', BT-71 'none'
# Lot 3 (printing) reserved to work-integration enterprises
CORSICAN_OFFICE_CLEANING = "ted_r209/op-ted_ted-rdf-mapping/contract_notices_all_countries/229620-2021.xml"
SPANISH_RESERVED_PRINTING = "ted_r209/op-ted_ted-rdf-mapping/prior_information_notices_all_countries/160666-2022.xml"


def _ocds(notice_id: str) -> dict:
    return next(record for record in folder_records(SAMPLE / "ocds") if record["id"] == notice_id)


def test_a_broad_code_with_no_own_text_evidence_does_not_pass():
    # The notice's only code, 85300000, is labelled "Social work and related services". The
    # keyword "social work" is in that label but nowhere in the notice's own words: code and
    # label are one piece of evidence, not a code plus a text hit (it used to pass with 47).
    record = _ocds(FOSTERING)
    profile = make_profile(keywords=["social work"], cpv=["85300000"])
    assert "social work" not in f"{record['title']} {record['description']}".lower()
    assert score_notice(profile, record) is None
    # the same notice with the keyword in its own title passes, and says where it was found
    record["title"] = f"{record['title']}: social work with foster families"
    match = score_notice(profile, record)
    assert match is not None and 'Your keyword “social work” is in the title' in match.reasons


def test_a_keyword_only_in_a_description_needs_a_code_near_the_profiles_not_one_whose_label_repeats_it():
    # A canteen notice whose first lot's description also mentions green areas, coded only
    # 45112710 "Landscaping work for green areas": the keyword in the description and the same
    # keyword in that code's label are one piece of evidence found twice (such construction
    # notices with a green-area lot reached a park-maintenance enterprise). A code in the
    # profile's own branch is real support.
    def canteen_with_green_areas(codes: list[str]) -> dict:
        record = sample(KANTINE)
        record["cpv"] = codes
        for lot in record["lots"]:
            lot["cpv"] = []
        record["lots"][0]["description"] += " Opgaven omfatter også pleje af grønne områder ved huset."
        return record

    profile = make_profile(keywords=["grønne områder"], cpv=["77310000"])
    assert score_notice(profile, canteen_with_green_areas(["45112710"])) is None
    match = score_notice(profile, canteen_with_green_areas(["45112710", "77313000"]))
    assert match is not None
    assert match.reasons[:2] == ["Your keyword “grønne områder” is in the lot description",
                                 "CPV 77313000 (Parks maintenance services) is within your 77310000"]


def test_a_keyword_in_a_codes_label_is_code_evidence_not_text():
    table = NoticeTable.build([sample(KANTINE)], as_of=None)  # 55512000 "Canteen management services"
    [concept] = profile_concepts(make_profile(keywords=["canteen management"]))[:1]
    hits = table.term_hits(concept[0].words)
    assert hits.lots.size == 0  # not in the notice's own (Danish) words
    assert hits.code_lots.size == 2  # both lots carry the code


def test_a_term_found_in_a_large_share_of_the_store_counts_less():
    assert rules.specificity(5, 1000) == 1.0
    assert rules.specificity(100, 1000) < 1.0
    assert rules.specificity(500, 1000) == pytest.approx(rules.GENERIC_FACTOR)
    assert rules.specificity(40, 40) == 1.0  # too few notices to say
    records = folder_records(SAMPLE)
    table = NoticeTable.build(records, as_of=None)
    generic = profile_concepts(make_profile(keywords=["services"]))[0][0]
    specific = profile_concepts(make_profile(keywords=["kantinedrift"]))[0][0]
    assert table.specificity(generic) < 0.7 < table.specificity(specific) == 1.0


def test_a_generic_keyword_alone_no_longer_sends_everything():
    records = folder_records(SAMPLE)
    narrow = make_profile(keywords=["kantinedrift"])
    broad = make_profile(keywords=["kantinedrift", "services"])
    sent_narrow = {match.notice_id for match in match_notices([narrow], records, as_of=None)}
    sent_broad = {match.notice_id for match in match_notices([broad], records, as_of=None)}
    # "services" is in a large share of the notices' titles: it adds almost nothing
    assert len(sent_broad) <= len(sent_narrow) + 2


def test_a_lot_has_the_notices_codes_too():
    record = sample(KANTINE)
    record["cpv"] = ["55512000"]
    for lot in record["lots"]:
        lot["cpv"] = ["55520000"]  # an additional code only, as eForms lots often give
    assert lot_codes(record, record["lots"][0]) == ["55520000", "55512000"]
    match = score_notice(make_profile(keywords=["kantinedrift"], cpv=["55512000"]), record)
    assert match is not None and match.facts["cpv"]["code"] == "55512000"
    assert match.facts["cpv"]["relation"] == "exact"


def test_a_secondary_code_in_a_long_list_counts_less_than_the_main_code():
    assert rules.code_weight(main=True, codes=8) == 1.0
    assert rules.code_weight(main=False, codes=2) > rules.code_weight(main=False, codes=8)
    record = sample(KANTINE)
    profile = make_profile(keywords=["kantinedrift"], cpv=["55512000"])
    main = score_notice(profile, record)
    for lot in record["lots"]:
        lot["cpv"] = ["79000000", "45000000", "71000000", "72000000", "55512000"]
    secondary = score_notice(profile, record)
    assert main is not None and secondary is not None and secondary.score < main.score


def test_reserved_execution_is_a_note_and_reserved_participation_a_reason():
    record = real_record(SOCIAL_25)
    assert record["reserved"] == [] and "reserved-execution" in record["social"]
    profile = make_profile(keywords=["tunnel"], reserved_eligible=["res-ws"], regions=[])  # "At the End of the Tunnel"
    match = score_notice(profile, record, min_relevance=0)
    assert match is not None
    assert match.facts["reserved"] == []
    assert not any(reason.startswith("Reserved for") for reason in match.reasons)
    assert any("reserved execution" in note and "not a reserved tender" in note for note in match.notes)
    # BT-71 reserved participation is a reason it fits
    record["reserved"] = ["res-ws"]
    for lot in record["lots"]:
        lot["reserved"] = ["res-ws"]
    reserved = score_notice(profile, record, min_relevance=0)
    assert "Reserved for sheltered workshops and social integration, which you qualify as" in reserved.reasons
    assert reserved.score > match.score


def test_a_phrase_counts_only_where_its_words_stand_together():
    # "Employment Law Services" holds both words of "employment services" but is legal work;
    # "Employment Services for Young People" is the phrase itself.
    profile = make_profile(keywords=["employment services"], cpv=[], regions=[])
    record = _ocds(FOSTERING)
    record["title"], record["description"] = "Employment Law Services", None
    for lot in record["lots"]:
        lot["title"], lot["description"] = None, None
    assert score_notice(profile, record) is None
    record["title"] = "Employment Services for Young People"
    match = score_notice(profile, record)
    assert match is not None and match.facts["keywords"][0]["field"] == "title"
    # In a description, the words pages apart are no phrase either (the notice's code is
    # the profile's, so a description alone could make it fit).
    coded = make_profile(keywords=["employment services"], cpv=["85300000"], regions=[])
    record["title"] = "Provision for Young People"
    record["description"] = "Employment services for care leavers, from the first month."
    assert score_notice(coded, record, min_relevance=0).facts["keywords"][0]["field"] == "description"
    record["description"] = ("Employment of qualified staff is required. " + "The provider plans each placement. " * 20
                             + "Services start in April.")
    assert score_notice(coded, record, min_relevance=0) is None


def test_a_phrase_still_stands_together_across_another_languages_connectors():
    # "di" and "van" are no stopwords, but they join a phrase as "of" does: the CPV labels of
    # refuse collection and window cleaning, as Italian and Dutch titles, are the phrases.
    for keyword, language, title in (("refuse collection", "it", "Servizi di raccolta di rifiuti"),
                                     ("window cleaning", "nl", "Wassen van ramen")):
        record = _ocds(FOSTERING)
        record.update(language=language, title=title, description=None, cpv=[])
        for lot in record["lots"]:
            lot.update(title=None, description=None, cpv=[])
        match = score_notice(make_profile(keywords=[keyword], cpv=[], regions=[]), record)
        assert match is not None, title
        assert match.facts["keywords"][0]["field"] == "title" and match.facts["keywords"][0]["language"] == language


def test_a_count_between_a_phrases_words_does_not_break_it():
    # Title "MPNETTOYAGECORSE2021", lots "Lot nº 1 : 19 bâtiments administratifs en
    # Corse-du-Sud": the work is only in the descriptions, "Nettoyage de 19 locaux
    # administratifs", which is "nettoyage des locaux" with a count inside.
    record = real_record(CORSICAN_OFFICE_CLEANING)
    assert record["lots"][0]["description"].startswith("Nettoyage de 19 locaux administratifs")
    cleaning = make_profile(keywords=["rengøring", "erhvervsrengøring"], cpv=["90911000", "90919000"], regions=[])
    match = score_notice(cleaning, record)
    assert match is not None
    # The reason quotes the phrase, not the bare "nettoyage" of a code's label, which says
    # less (nettoyage of streets, vehicles, sewers): in a store of many French notices it is common.
    assert [(item["term"], item["field"], item["found"]) for item in match.facts["keywords"]] == [
        ("nettoyage des locaux", "lot description", "nettoyage locaux")]
    table = NoticeTable.build([record], as_of=None)
    phrase = ("nettoyage", "locaux")
    hits = table.term_hits(phrase, "fr", span=phrase_span("nettoyage des locaux", phrase))
    assert hits.lots.tolist() == [0, 1]  # "Nettoyage de 19 / 20 locaux ..."; lot 3 cleans "21 bâtiments"


def test_a_count_in_a_term_takes_no_place_either():
    # "covid-19-test" is "covid" and "test" side by side, the 19 anywhere in the title; the
    # count no longer widens the window by a word.
    record = _ocds(FOSTERING)
    phrase = ("covid", "19", "test")
    span = phrase_span("covid-19-test", phrase)
    for title, found in (("COVID-19 test kits", True), ("COVID-19 antigen test kits", False)):
        record.update(title=title, description=None, language="en")
        table = NoticeTable.build([record], as_of=None)
        assert (table.term_hits(phrase, "en", span=span).lots.size > 0) is found, title


def test_where_a_phrase_stands_agrees_with_trying_every_window():
    # Differential: the look at all fields at once against trying every window of each.
    import random

    import numpy as np

    from tendermatch.matcher.table import _words_together

    generator = random.Random(16)
    for _ in range(300):
        words, span = generator.randint(1, 3), generator.randint(1, 4)
        sequences = [np.asarray([generator.randrange(8) for _ in range(generator.randint(0, 12))], dtype=np.int32)
                     for _ in range(generator.randint(1, 6))]
        keys = [np.asarray(generator.sample(range(8), generator.randint(1, 2)), dtype=np.int32) for _ in range(words)]
        expected = [any(all(set(sequence[start:start + span].tolist()) & set(wanted.tolist()) for wanted in keys)
                        for start in range(max(1, sequence.size - span + 1)))
                    for sequence in sequences]
        assert _words_together(sequences, keys, span, tokens=8).tolist() == expected, (sequences, keys, span)


EMPLOYMENT = {"keywords": ["beskæftigelsesindsats", "virksomhedspraktik", "ledige", "employment programme"],
              "cpv": ["85312510", "79611000"], "regions": [], "reserved_eligible": ["res-ws"]}


def test_the_kind_of_enterprise_a_lot_is_reserved_for_is_no_evidence_of_employment_work():
    # Lot 3 prints communication material, "reserved to CETIS and work-integration enterprises":
    # the words name who may bid, not the work. (Buyers reserve lots of every trade that way.)
    record = real_record(SPANISH_RESERVED_PRINTING)
    assert "empresas de inserción" in record["lots"][2]["title"]
    assert score_notice(make_profile(**EMPLOYMENT), record) is None
    printer = make_profile(keywords=["tryksager", "trykning"], cpv=["79810000"], regions=[],
                           reserved_eligible=["res-ws"])
    match = score_notice(printer, record)
    assert match is not None and match.lot_id == "3"  # the print lot goes to the print shop


@pytest.mark.parametrize(("language", "title"), [
    ("da", "Tryk af kommunikationsmaterialer, forbeholdt programmer for beskyttet beskæftigelse"),
    ("en", "Printing of communication material, restricted to sheltered employment programmes"),
    ("nl", "Drukken van communicatiemateriaal, voorbehouden aan de sociale werkvoorziening"),
    ("pt", "Impressão de materiais de comunicação reservada a programas de emprego protegido"),
    ("de", "Druck von Kommunikationsmaterial, vorbehalten geschützten Beschäftigungsverhältnissen"),
])
def test_the_wording_of_a_reservation_is_no_evidence_of_employment_work(language, title):
    # The directive's "sheltered employment programmes" stands in reserved lots of every trade.
    record = real_record(SPANISH_RESERVED_PRINTING)
    lot = {**record["lots"][2], "title": title, "description": None}
    reserved = {**record, "language": language, "title": title, "description": None, "lots": [lot]}
    assert score_notice(make_profile(**EMPLOYMENT), reserved) is None
    # Employment work under the same reservation is still employment work.
    work = {**reserved, "lots": [{**lot, "title": f"Jobcoaching. {title}"}]}
    assert score_notice(make_profile(**{**EMPLOYMENT, "keywords": [*EMPLOYMENT["keywords"], "jobcoaching"]}),
                        work) is not None
