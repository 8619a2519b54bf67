"""Own-language evidence: a Danish keyword finds the notices written in other languages,
through the term file and the CPV labels of all 24 EU languages, looked up only in
notices of that language, exactly or by stem; Greek and Cyrillic text is folded, not
deleted; foreign text never gives false friends. Real notices."""

from __future__ import annotations

from importlib import resources

from tendermatch.matcher import bridge
from tendermatch.matcher.engine import match_notices, score_notice
from tendermatch.matcher.table import NoticeTable
from tendermatch.matcher.terms import profile_concepts
from tendermatch.matcher.text import fold, words
from tests.matcher.helpers import LIMPIEZA, make_profile, real_record, sample

FRENCH_CLEANING = "ted_r209/op-ted_ted-rdf-mapping/contract_notices_all_countries/389914-2021.xml"
POLISH_CLEANING = "ted_r209/op-ted_ted-rdf-mapping/prior_information_notices_all_countries/090099-2021.xml"
GREEK_CLEANING = "ted_r209/op-ted_ted-rdf-mapping/prior_information_notices_all_countries/516538-2021.xml"
BULGARIAN_SCHOOL_MEALS = "ted_r209/op-ted_ted-rdf-mapping/contract_notices_all_countries/051043-2021.xml"
FINNISH_JOBSEEKERS = "ted_r209/op-ted_ted-rdf-mapping/prior_information_notices_all_countries/026864-2018.xml"
LATVIAN_GENERATORS = "ted_r209/op-ted_ted-rdf-mapping/prior_information_notices_all_countries/452652-2021.xml"
ENGLISH_LEAD_EMPLOYER = "ted_r209/op-ted_ted-rdf-mapping/prior_information_notices_all_countries/153679-2018.xml"
ENGLISH_GRAPHIC_DESIGN = "ted_r209/op-ted_ted-rdf-mapping/contract_notices_all_countries/197640-2017.xml"
GERMAN_SEWAGE_WORKS = "ted_r209/op-ted_ted-rdf-mapping/prior_information_notices_all_countries/279652-2017.xml"

# A Danish cleaning enterprise as it writes itself: Danish words only, no CPV codes.
CLEANING = {"keywords": ["rengøring", "erhvervsrengøring"], "regions": []}


def _own_words(record: dict) -> str:
    return " ".join([record["title"], record.get("description") or ""]
                    + [f"{lot.get('title') or ''} {lot.get('description') or ''}" for lot in record["lots"]]).lower()


def test_a_french_notice_is_found_through_a_danish_keyword():
    record = real_record(FRENCH_CLEANING)  # "Nettoyage des locaux ...", in French only
    assert record["language"] == "fr" and "rengøring" not in _own_words(record)
    match = score_notice(make_profile(**CLEANING), record)
    assert match is not None
    [found] = [item for item in match.facts["keywords"] if item["keyword"] == "rengøring"]
    assert found["origin"] == "translation" and found["language"] == "fr" and found["found"].startswith("nettoyage")
    assert f'“{found["found"]}” in the lot title (French for your keyword “rengøring”)' in match.reasons


def test_a_polish_notice_is_found_through_a_danish_keyword():
    record = real_record(POLISH_CLEANING)  # "Usługi sprzątania w obiekcie ..."
    assert record["language"] == "pl"
    match = score_notice(make_profile(**CLEANING), record)
    assert match is not None
    assert any(item["origin"] == "translation" and item["language"] == "pl" and "sprzątania" in item["found"]
               for item in match.facts["keywords"])


def test_a_greek_notice_is_folded_and_found_through_a_danish_keyword():
    record = real_record(GREEK_CLEANING)  # "ΥΠΗΡΕΣΙΕΣ ΚΑΘΑΡΙΣΜΟΥ ΚΤΗΡΙΩΝ"
    assert words(record["title"]) == ["ypiresies", "katharismoy", "ktirion"]  # folded, not deleted
    match = score_notice(make_profile(**CLEANING), record)
    assert match is not None
    assert any(item["language"] == "el" for item in match.facts["keywords"] if item["origin"] == "translation")


def test_greek_and_cyrillic_text_is_folded_to_latin_letters():
    assert fold("Почистване на сгради") == "pochistvane na sgradi"
    assert fold("Σίτιση μαθητών") == "sitisi mathiton"
    assert fold("Usługi sprzątania") == "uslugi sprzatania"  # "ł" too
    assert fold("Kantinedrift på Nørrebro") == "kantinedrift paa noerrebro"  # Danish letters as before


def test_translated_terms_are_looked_up_only_in_notices_of_their_language():
    french, spanish = real_record(FRENCH_CLEANING), sample(LIMPIEZA)
    # The Spanish notice says "limpieza": the French "nettoyage" must not be looked for there,
    # nor the Spanish word in the French notice.
    spanish["title"] = f"{spanish['title']} nettoyage"
    table = NoticeTable.build([french, spanish], as_of=None)
    hits = table.term_hits(("nettoyage",), "fr")
    assert {table.records[table.lot_notice[lot]]["id"] for lot in hits.lots} == {french["id"]}
    assert table.term_hits(("limpieza",), "es").lots.size > 0
    assert all(table.records[table.lot_notice[lot]]["language"] == "es"
               for lot in table.term_hits(("limpieza",), "es").lots)


def test_foreign_words_are_never_matched_by_typo_or_inside_a_word():
    # false friends: furniture / fourniture, reuse / creuse, linen / digitaalinen
    record = real_record(FRENCH_CLEANING)
    record["title"] = "Fourniture de matériel; creuse; digitaalinen"
    for keyword in ("furniture", "reuse", "linen"):
        assert score_notice(make_profile(keywords=[keyword]), record, min_relevance=0) is None, keyword
    # in Danish or English text a typo still finds the word ("rengørnig")
    danish = real_record(FRENCH_CLEANING)
    danish.update(language="da", title="Erhvervsrengørnig af kontorer")
    assert score_notice(make_profile(keywords=["erhvervsrengøring"]), danish) is not None


def test_a_synonym_is_danish_or_english_and_a_foreign_word_only_a_term_of_its_language():
    # "Biologische Reinigung" is a sewage works' treatment stage. Bare "reinigung" once stood
    # in the synonym file beside "rengøring", looked for in every notice by the Danish and
    # English rules (prefix, inside a word, typo): the extension of a sewage works went to a
    # cleaning firm. German cleaning words are terms of the German key, as "Gebäudereinigung".
    record = real_record(GERMAN_SEWAGE_WORKS)
    assert any((lot.get("title") or "").startswith("Biologische Reinigung") for lot in record["lots"])
    cleaning = make_profile(**CLEANING, cpv=["90911000"])
    assert score_notice(cleaning, record) is None
    assert "Gebäudereinigung" in {term.text for term in bridge.translations("rengøring") if term.language == "de"}
    office = {**record, "lots": [{**record["lots"][0], "title": "Gebäudereinigung der Verwaltungsgebäude"}]}
    assert score_notice(cleaning, office) is not None
    synonyms = (resources.files("tendermatch.matcher") / "data" / "synonyms.txt").read_text(encoding="utf-8")
    assert "reinigung" not in synonyms and "nettoyage" not in synonyms


def test_a_keyword_is_bridged_through_the_cpv_labels_of_every_language():
    assert bridge.keyword_codes("rengøring") == ("90910000",)
    assert bridge.keyword_codes("vinduespudsning") == ("90911300",)
    assert bridge.keyword_codes("ledige") == ()  # "ledere" (conductors) shares its Danish stem: not a bridge
    french = {
        translation.text for translation in bridge.translations("vinduespudsning") if translation.language == "fr"
    }
    assert any("vitres" in text for text in french)


def test_the_shipped_generic_label_words_are_those_of_the_labels():
    computed = bridge.count_generic_words(bridge._cpv_labels())
    assert {language: frozenset(found) for language, found in computed.items()} == bridge._generic_words()


def test_the_term_file_links_danish_keywords_to_concepts_in_every_big_language():
    for keyword in ("rengøring", "kantinedrift", "skolemad", "grønne områder", "tryksager", "malerarbejde",
                    "genbrug", "ledige", "herberg", "softwaretest", "møbelreparation", "vaskeri", "cykelbud"):
        languages = {translation.language for translation in bridge.translations(keyword)}
        assert {"fr", "de", "pl", "es", "it", "nl"} <= languages, (keyword, sorted(languages))


def test_a_bulgarian_notice_is_found_through_a_danish_keyword():
    record = real_record(BULGARIAN_SCHOOL_MEALS)  # "Доставка на обедно хранене на учениците ..."
    assert record["language"] == "bg"
    found = match_notices([make_profile(keywords=["skolemad", "frokostordning"], regions=[])], [record], as_of=None)
    assert found
    assert any(item["origin"] == "translation" and item["language"] == "bg" for item in found[0].facts["keywords"])


def test_a_danish_or_english_term_names_concepts_of_one_trade_only():
    # A keyword's own concepts bring in the rest of their trade: a furniture term also filed
    # under reuse once sent a furniture workshop "reusable" medical supplies and the staffing
    # of recycling centres.
    trades = bridge._trades()
    mixed = {key: names for key, names in bridge._concept_index().items()
             if len({trades[name] for name in names}) > 1}
    assert mixed == {}


def test_a_finnish_compound_of_a_term_listed_after_its_plural_is_found():
    # The term file lists "työnetsijät" (job seekers) before "työnetsijä"; the two have one
    # stem, but only the singular is the first part of "Työnetsijäpalvelu" (job-seeker service).
    record = real_record(FINNISH_JOBSEEKERS)
    assert record["language"] == "fi" and record["title"] == "Työnetsijäpalvelu"
    # Job-search services; the notice is coded with their parent, recruitment services.
    profile = make_profile(keywords=["ledige"], cpv=["79611000"], regions=[])
    kept = {term.text for concept in profile_concepts(profile) for term in concept if term.language == "fi"}
    assert {"työnetsijät", "työnetsijä"} <= kept
    found = match_notices([profile], [record], as_of=None)
    assert found and found[0].facts["keywords"][0]["field"] == "lot title"
    assert found[0].facts["keywords"][0]["language"] == "fi"
    # The reason quotes the word as the notice writes it, not its folded spelling.
    assert found[0].reasons[0] == "“työnetsijäpalvelu” in the lot title (Finnish for your keyword “ledige”)"


def test_a_synonym_that_is_also_a_translation_counts_once():
    # "vinduespudsning" is a synonym of "window cleaning" and a Danish term of its concept:
    # one term (the synonym), not a second one in Danish that would add to the score.
    kept = [term for concept in profile_concepts(make_profile(keywords=["window cleaning"], regions=[]))
            for term in concept if term.words == ("vinduespudsning",)]
    assert len(kept) == 1 and kept[0].origin == "synonym"


def test_a_keywords_trade_brings_its_other_concepts_in_english_too_and_says_so():
    # A print shop writes "tryksager" and "printing"; its trade also sets publications. The
    # notice says only "Graphic design services" (CPV 79933000, design support).
    record = real_record(ENGLISH_GRAPHIC_DESIGN)
    assert record["language"] == "en" and record["title"].startswith("Graphic design services")
    printer = make_profile(keywords=["tryksager", "printing"], cpv=["79800000"], regions=[])
    match = score_notice(printer, record)
    assert match is not None
    [found] = match.facts["keywords"]
    assert (found["origin"], found["found"], found["source"]) == ("related", "graphic design", "terms:graphic_design")
    # The reason does not call graphic design a translation of the keyword.
    assert match.reasons[0] == "“graphic design” in the lot title (the same trade as your keyword “tryksager”)"
    # A keyword of another trade finds nothing: the code alone is not enough.
    assert score_notice(make_profile(keywords=["rengøring"], cpv=["79800000"], regions=[]), record) is None
    # A related term never takes a word from a keyword's own synonym: "grass cutting" is
    # the synonym of "græsslåning", not a relative of "grønne områder" listed first.
    concepts = profile_concepts(make_profile(keywords=["grønne områder", "græsslåning"], regions=[]))
    [holder] = [concept for concept in concepts for term in concept if term.text == "grass cutting"]
    assert holder[0].text == "græsslåning"


def test_without_a_stemmer_a_word_is_not_every_word_with_its_first_letters():
    # Latvian has no Snowball stemmer: the first letters stand in for the stem, and
    # "ģenerāltīrīšana" (general cleaning) and "ģeneratoru" (of generators) share six.
    record = real_record(LATVIAN_GENERATORS)
    assert record["language"] == "lv" and record["title"] == "Ģeneratoru uzstādīšanas pakalpojums"
    assert "ģenerāltīrīšana" in bridge._concepts()["deep_cleaning"]["lv"]
    assert score_notice(make_profile(keywords=["hovedrengøring"], regions=[]), record, min_relevance=0) is None
    # Another ending of the same word still counts.
    assert bridge.same_word("generaltirisana", "generaltirisanas", "lv")
    assert not bridge.same_word("generaltirisana", "generatoru", "lv")


def test_a_stem_does_not_join_a_word_to_its_far_derivations():
    # The English stemmer cuts "employability", "employment" and "employer" to "employ": a
    # translated term "employability services" found a hospital's "Lead Employer Service".
    record = real_record(ENGLISH_LEAD_EMPLOYER)
    assert record["lots"][1]["title"] == "General Practice Trainees Lead Employer Service"
    employment = make_profile(keywords=["beskæftigelsesindsats"], regions=[])
    assert "employability services" in {term.text for concept in profile_concepts(employment) for term in concept}
    assert score_notice(employment, record, min_relevance=0) is None
    assert not bridge.same_word("employability", "employer", "en")
    # An inflection still counts, an umlaut plural and stacked Finnish case endings too.
    assert bridge.same_word("nettoyage", "nettoyages", "fr") and bridge.same_word("siivous", "siivouksen", "fi")
    assert bridge.same_word("krankenhaus", "krankenhaeusern", "de")  # "Krankenhäusern", folded
    assert bridge.same_word("tyoenhakijat", "tyoenhakijoille", "fi")  # "työnhakijoille": for job seekers
