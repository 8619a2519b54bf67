"""Tests of the TED R2.0.8/R2.0.9 TED_EXPORT parser against real notices: the repo's own copies
(tests/data/corpus, sample/notices) always, every TED_EXPORT file of the shared corpus when it is there.

Expected values below were read by hand from the XML of each notice (FORM_SECTION original
form, CODED_DATA_SECTION and TRANSLATION_SECTION/ML_TITLES).
"""

from __future__ import annotations

import pytest

from tendermatch.crawler.parsers import detect_format, parse_document
from tendermatch.crawler.parsers.common import ParseError
from tendermatch.crawler.parsers.ted_xml import parse_ted_xml, ted_id
from tests.conftest import CORPUS, real_notice, real_notices

TED = CORPUS / "ted_r209"

DK = "op-ted_ted-rdf-mapping/dk"
PIN = "op-ted_ted-rdf-mapping/prior_information_notices_all_countries"
DEV = "op-ted_ted-xml-data-converter/development-notices/ted-xml"
ALL_FILES = sorted(TED.rglob("*.xml"))  # [] without the corpus
IN_REPO_FILES = real_notices("ted_r209", (".xml",))


def load(relative: str) -> bytes:
    """A file by its path under the corpus's ted_r209, from the repo's own copy."""
    return real_notice(f"ted_r209/{relative}").read_bytes()


def parse(relative: str):
    notices = parse_ted_xml(load(relative), url=f"file:///corpus/{relative}")
    assert len(notices) == 1
    return notices[0]




def lot_summary(record) -> list[tuple]:
    return [(lot["lot_id"], lot["title"], lot["cpv"], lot["nuts"], lot["value"], lot["reserved"])
            for lot in record["lots"]]


# -- 1. every TED_EXPORT file: valid records or a ParseError, never anything else ------------------


@pytest.mark.parametrize("files, at_least", [
    pytest.param(IN_REPO_FILES, 40, id="in-repo"),
    pytest.param(ALL_FILES, 1301, id="corpus", marks=pytest.mark.corpus),
])
def test_every_corpus_file_gives_valid_records_or_a_parse_error(files, at_least, validator):
    assert len(files) >= at_least
    parsed, rejected, problems = 0, [], []
    for path in files:
        relative = str(path.relative_to(TED)) if path.is_relative_to(TED) else str(path)
        try:
            notices = parse_ted_xml(path.read_bytes(), url=path.as_uri())
        except ParseError as error:
            message = str(error)
            assert message and "\n" not in message
            rejected.append(f"{relative}: {message}")
            continue
        except Exception as error:
            problems.append(f"{relative}: {type(error).__name__}: {error}")
            continue
        assert len(notices) == 1, relative
        notice = notices[0]
        record = {**notice.record, "sources": ["test"]}
        errors = sorted(validator.iter_errors(record), key=lambda e: list(e.path))
        if errors:
            problems.append(f"{relative}: {errors[0].message} at {list(errors[0].path)}")
        if not (notice.keys and notice.keys[0].startswith("pub:")):
            problems.append(f"{relative}: keys {notice.keys}")
        elif record["id"] != ted_id(notice.keys[0]):
            problems.append(f"{relative}: id {record['id']} does not match key {notice.keys[0]}")
        parsed += 1
    assert not problems, "\n".join(problems[:20])
    # Every file of the corpus is a real published notice: all of them must be read.
    assert parsed == len(files), "\n".join(rejected[:20])
    print(f"\nted_r209: {parsed} of {len(files)} files parsed, {len(rejected)} rejected")


def test_five_stages_are_represented():
    assert ted_id("pub:7321-2017") == "ted:007321-2017"
    stages: dict[str, int] = {}
    for relative in (f"{DK}/079038-2017.xml", f"{DK}/044742-2022.xml", f"{DK}/395374-2016.xml",
                     f"{DK}/026835-2016.xml", f"{DEV}/23-119901-001-EXP.xml"):
        stage = parse(relative).record["stage"]
        stages[stage] = stages.get(stage, 0) + 1
    assert set(stages) == {"planning", "competition", "result", "dir-awa-pre", "change"}


# -- 2. field-level checks on hand-read notices -----------------------------------------------------


def test_danish_pin_without_call_f21():
    notice = parse(f"{DK}/079038-2017.xml")
    record = notice.record
    assert notice.keys == ["pub:79038-2017"] and notice.changes is None
    assert record["id"] == "ted:079038-2017"
    assert record["stage"] == "planning"  # F21, NOTICE TYPE PRI_ONLY, TD 0
    assert record["language"] == "da"
    assert record["title"] == "Personlig pleje og praktisk hjælp."
    assert record["titles"]["da"] == "Danmark-Allerød: Husligt arbejde"
    assert record["titles"]["en"] == "Denmark-Allerød: Domestic services"
    assert len(record["titles"]) == 24
    assert record["buyer"] == {"name": "Allerød Kommune", "city": "Allerød", "country": "DK"}
    assert record["cpv"] == ["98514000", "98500000", "98513000", "98513310", "98900000"]
    assert record["nuts"] == ["DK013"]  # the place of performance, not the buyers' addresses
    assert record["published"] == "2017-03-02"
    assert record["deadline"] is None and record["value"] is None and record["supplier"] is None
    assert record["reserved"] == [] and record["framework_agreement"] is False
    assert record["status"] == "active"
    assert record["description"].startswith("Følgende 3 Kommune (herefter samlet benævnt Kommunerne)")
    assert record["url"] == f"file:///corpus/{DK}/079038-2017.xml"
    assert lot_summary(record) == [("1", "Personlig pleje og praktisk hjælp.", record["cpv"], ["DK013"], None, [])]


def test_danish_contract_notice_light_regime_deadline_from_coded_data():
    record = parse(f"{DK}/044742-2022.xml").record
    assert record["id"] == "ted:044742-2022"
    assert record["stage"] == "competition"  # F21 NOTICE TYPE CONTRACT
    assert record["title"] == "Madservice"
    assert record["titles"]["da"] == "Danmark-Solrød: Husligt arbejde"
    assert record["titles"]["en"] == "Denmark-Solrød: Domestic services"
    assert record["buyer"] == {"name": "Solrød Kommune", "city": "Solrød", "country": "DK"}
    assert record["cpv"] == ["98514000"] and record["nuts"] == ["DK021"]
    # No DATE_RECEIPT_TENDERS in the form: CODIF_DATA/DT_DATE_FOR_SUBMISSION '20220321 23:59'.
    assert record["deadline"] == "2022-03-21T23:59:00"
    assert record["published"] == "2022-01-26"
    # One lot: its VAL_OBJECT (7 200 000 DKK) is the contract's value.
    assert record["value"] == {"amount": 7200000.0, "currency": "DKK"}
    assert lot_summary(record) == [("1", "Madservice", ["98514000"], ["DK021"],
                                    {"amount": 7200000.0, "currency": "DKK"}, [])]


def test_danish_multi_lot_reserved_framework_contract_notice():
    record = parse(f"{DK}/436913-2017.xml").record
    assert record["id"] == "ted:436913-2017"
    assert record["stage"] == "competition"
    assert record["title"] == "Udbud af beskæftigelsesindsats til Fredericia Kommune."
    assert record["titles"]["da"] == "Danmark-Fredericia: Jobsøgningstjenester"
    assert record["titles"]["en"] == "Denmark-Fredericia: Job search services"
    assert record["buyer"] == {"name": "Fredericia Kommune", "city": "Fredericia", "country": "DK"}
    assert record["cpv"] == ["79611000", "75111100"]  # CPV_MAIN first, then the lots' additional
    assert record["nuts"] == ["DK032"]
    assert record["deadline"] == "2017-11-24T12:00:00"  # 2017-11-24 + 12:00, no offset known
    assert record["published"] == "2017-11-02"
    assert record["reserved"] == ["res-ws"]  # LEFTI/RESTRICTED_SHELTERED_PROGRAM
    assert record["framework_agreement"] is True  # PROCEDURE/FRAMEWORK
    cpv = ["79611000", "75111100"]
    assert lot_summary(record) == [
        ("1", "Delområde 1: Borgeren med udfordringer ud over ledighed", cpv, ["DK032"], None, ["res-ws"]),
        ("2", "Delområde 2: A-dagpengemodtagere, jobparate kontanthjælpsmodtagere og sygedagpengemodtagere",
         cpv, ["DK032"], None, ["res-ws"]),
        ("3", "Delområde 3: Fleksjob", cpv, ["DK032"], None, ["res-ws"]),
    ]
    assert record["lots"][2]["description"].startswith("Fredericia Kommune ønskertilbud på ydelser indenfor:")


def test_danish_award_with_two_lots_and_two_suppliers():
    notice = parse(f"{DK}/395374-2016.xml")
    record = notice.record
    assert record["id"] == "ted:395374-2016"
    assert record["stage"] == "result"  # F22 NOTICE TYPE AWARD_CONTRACT
    assert record["title"] == "Kontrakt om kantinedrift for Vejlandshuset og/eller Amagerværket."
    assert record["titles"]["da"] == "Danmark-København: Drift af kantiner"
    assert record["titles"]["en"] == "Denmark-Copenhagen: Canteen management services"
    assert record["buyer"] == {"name": "Hofor A/S", "city": "København S", "country": "DK"}
    assert record["supplier"] == "Fazer Food Services A/S; Compass Group Danmark A/S"
    assert record["cpv"] == ["55512000"] and record["nuts"] == ["DK011"]
    # OBJECT_CONTRACT/VAL_TOTAL says EUR although the awards are in DKK: read as published.
    assert record["value"] == {"amount": 50600000.0, "currency": "EUR"}
    assert record["deadline"] is None and record["status"] == "active"
    assert notice.changes is None  # an award refers to its contract notice, it does not change it
    assert lot_summary(record) == [
        ("1", "Kontrakt om kantinedrift for Vejlandshuset", ["55512000"], ["DK011"], None, []),
        ("2", "Kontrakt om kantinedrift for Amagerværket", ["55512000"], ["DK011"], None, []),
    ]


def test_danish_award_of_a_framework_agreement_with_notice_uuid():
    record = parse(f"{DK}/040205-2021.xml").record  # FORM_SECTION starts with NOTICE_UUID
    assert record["id"] == "ted:040205-2021"
    assert record["stage"] == "result"
    assert record["title"] == "Rammeaftale om levering af advokatydelser"
    assert record["titles"]["da"] == "Danmark-København: Advokatbistand og repræsentation"
    assert record["titles"]["en"] == "Denmark-Copenhagen: Legal advisory and representation services"
    assert record["buyer"] == {"name": "HOFOR A/S", "city": "København S", "country": "DK"}
    assert record["supplier"] == "Kromann Reumert"
    assert record["framework_agreement"] is True
    assert record["cpv"] == ["79110000"] and record["nuts"] == ["DK01", "DK"]
    assert record["published"] == "2021-01-26"


def test_danish_framework_agreement_with_six_lots_in_english():
    record = parse(f"{DK}/223199-2020.xml").record
    assert record["id"] == "ted:223199-2020"
    assert record["stage"] == "competition" and record["language"] == "en"
    assert record["title"] == "Tender for Legal Services Denmark Framework Agreement"
    assert record["titles"]["da"] == "Danmark-Fredericia: Juridisk virksomhed"
    assert record["titles"]["en"] == "Denmark-Fredericia: Legal services"
    assert record["buyer"] == {"name": "Ørsted Services A/S", "city": "Fredericia", "country": "DK"}
    assert record["framework_agreement"] is True
    assert record["deadline"] == "2020-06-08T13:00:00"
    assert record["cpv"] == ["79100000", "79110000"] and record["nuts"] == ["DK"]
    assert [lot["lot_id"] for lot in record["lots"]] == ["1", "2", "3", "4", "5", "6"]
    assert record["lots"][4]["title"] == "Lot 5: GDPR"
    assert all(lot["cpv"] == ["79100000", "79110000"] and lot["nuts"] == ["DK"] for lot in record["lots"])


def test_danish_pin_used_as_call_for_competition_with_lot_values_and_social_clause():
    record = parse(f"{DK}/007321-2017.xml").record
    assert record["id"] == "ted:007321-2017"
    # F21 NOTICE TYPE PRI_CALL_COMPETITION, TD 'A': the call itself (eForms form type competition).
    assert record["stage"] == "competition"
    assert record["title"] == "Udbud af beredskab i Sydøstjyllands Brandvæsens beredskabsområde."
    assert record["titles"]["da"] == "Danmark-Horsens: Brandvæsen og redningstjenester"
    assert record["titles"]["en"] == "Denmark-Horsens: Fire-brigade and rescue services"
    assert record["value"] == {"amount": 145000000.0, "currency": "DKK"}
    assert record["deadline"] == "2017-01-31T12:00:00"  # DT_DATE_FOR_SUBMISSION
    # LEFTI/PERFORMANCE_CONDITIONS: "... aftale om overholdelse af arbejdsklausul ..."
    assert record["social"] == ["clause"]
    assert [(lot["lot_id"], lot["value"]["amount"]) for lot in record["lots"]] == [
        ("1", 33000000.0), ("2", 43000000.0), ("3", 69000000.0)]
    assert record["lots"][1]["title"] == "Område 2 — Station Hedensted, Station Hornsyld og Station Klakring"
    assert all(lot["social"] == ["clause"] for lot in record["lots"])
    assert record["cpv"] == ["75250000", "75251110", "75251000", "75252000", "75251100"]


def test_danish_award_of_a_discontinued_procedure_is_cancelled():
    record = parse(f"{DK}/107140-2021.xml").record  # NO_AWARDED_CONTRACT/PROCUREMENT_DISCONTINUED
    assert record["id"] == "ted:107140-2021"
    assert record["stage"] == "result" and record["status"] == "cancelled"
    assert record["title"] == "IT-Klientudstyr 2021-2025"
    assert record["titles"]["da"] == "Danmark-Sorø: Edb-maskiner og -artikler"
    assert record["buyer"] == {"name": "Region Sjælland", "city": "Sorø", "country": "DK"}
    assert record["supplier"] is None
    assert len(record["cpv"]) == 12 and record["cpv"][0] == "30200000"


def test_danish_veat_notice():
    record = parse(f"{DK}/026835-2016.xml").record
    assert record["id"] == "ted:026835-2016"
    assert record["stage"] == "dir-awa-pre"  # F15
    assert record["title"].startswith("Artikel 32 — Indkøb af produktionsudstyr særligt udviklet")
    assert record["titles"]["en"] == "Denmark-Aalborg: Industrial process control equipment"
    assert record["buyer"] == {"name": "Aalborg Universitet", "city": "Aalborg", "country": "DK"}
    assert record["supplier"] == "Festo A/S"  # AWARDED_CONTRACT/CONTRACTOR (no CONTRACTORS wrapper)
    assert record["value"] == {"amount": 3339000.0, "currency": "DKK"}
    assert record["cpv"] == ["38810000"] and record["nuts"] == ["DK050"]
    assert record["deadline"] is None


def test_danish_r208_defence_contract_notice():
    record = parse(f"{DK}/204549-2021.xml").record  # CONTRACT_DEFENCE, R2.0.8 namespace
    assert record["id"] == "ted:204549-2021"
    assert record["stage"] == "competition"
    assert record["title"] == "Udbud med forhandling af patruljekøretøjer (stor stationcar)"
    assert record["titles"]["da"] == "Danmark-København: Reparation og vedligeholdelse af biler"
    assert record["titles"]["en"] == "Denmark-Copenhagen: Repair and maintenance services of cars"
    assert record["buyer"] == {"name": "Rigspolitiet v./Center for Flåde- og Materielstyring",
                               "city": "København V", "country": "DK"}
    assert record["deadline"] == "2021-05-27T09:00:00"  # RECEIPT_LIMIT_DATE 27/05/2021 09:00
    assert record["framework_agreement"] is True  # NOTICE_INVOLVES_DEFENCE ESTABLISHMENT_FRAMEWORK_AGREEMENT
    assert record["cpv"][:3] == ["50112000", "34111000", "34111100"] and len(record["cpv"]) == 14
    assert record["nuts"] == ["DK"]
    assert record["social"] == ["clause"]  # EXISTENCE_OTHER_PARTICULAR_CONDITIONS: arbejdsklausuler
    assert len(record["lots"]) == 1


def test_danish_r208_defence_award_with_supplier():
    record = parse(f"{DK}/029228-2021.xml").record  # CONTRACT_AWARD_DEFENCE
    assert record["id"] == "ted:029228-2021"
    assert record["stage"] == "result"
    assert record["title"] == "Design, produktion og personalisering af pas"
    assert record["titles"]["en"] == "Denmark-Copenhagen: Passports"
    assert record["buyer"] == {"name": "Rigspolitiet", "city": "København V", "country": "DK"}
    assert record["supplier"] == "Cardcoin-Veridos (konsortium)"
    assert record["framework_agreement"] is True  # NOTICE_INVOLVES_DESC_DEFENCE CONCLUSION_FRAMEWORK_AGREEMENT
    assert record["cpv"] == ["22451000", "22455000"] and record["nuts"] == ["DK0"]
    assert record["value"] is None  # a range (250-450 million), not one value


def test_foreign_reserved_notice_has_danish_and_english_titles():
    notice = parse(f"{DEV}/19-090974-001-EXP.xml")  # file named by reception id
    record = notice.record
    assert notice.keys == ["pub:91489-2019"]
    assert record["id"] == "ted:091489-2019"  # from NO_DOC_OJS 2019/S 040-091489
    assert record["stage"] == "competition" and record["language"] == "fr"
    assert record["title"].startswith("Marché de service pour l'élaboration, la fabrication et la livraison de repas")
    assert record["titles"]["da"] == "Frankrig-Villejuif: Forberedelse af måltider"
    assert record["titles"]["en"] == "France-Villejuif: Meal-preparation services"
    assert record["buyer"] == {"name": "EPS Paul Guiraud", "city": "Villejuif Cedex", "country": "FR"}
    # RESTRICTED_SHELTERED_WORKSHOP + RESTRICTED_SHELTERED_PROGRAM + RESERVED_ORGANISATIONS_SERVICE_MISSION
    assert record["reserved"] == ["res-ws", "res-pub-ser"]
    assert record["lots"][0]["reserved"] == ["res-ws", "res-pub-ser"]
    assert record["cpv"] == ["55321000"] and record["nuts"] == ["FR105"]
    assert record["deadline"] == "2019-03-22T15:00:00"
    assert record["published"] == "2019-02-26"


def test_corrigendum_f14_changes_the_original_and_carries_the_new_deadline():
    notice = parse(f"{DEV}/23-119901-001-EXP.xml")
    record = notice.record
    assert record["id"] == "ted:121869-2023"
    assert record["stage"] == "change"
    assert notice.changes == "pub:267307-2022"  # COMPLEMENTARY_INFO/NOTICE_NUMBER_OJ 2022/S 098-267307
    # CHANGE IV.2.2) new value 2023-03-03 17:00 (IV.2.7, the opening, is not the deadline)
    assert record["deadline"] == "2023-03-03T17:00:00"
    assert record["title"].startswith("Empreitada EN341 - ACESSO AO TERMINAL FERROVIÁRIO DE ALFARELOS")
    assert record["titles"]["da"] == "Portugal-Almada: Bygge-anlægsarbejde: vejviadukter"
    assert record["titles"]["en"] == "Portugal-Almada: Road viaduct construction work"
    assert record["buyer"] == {"name": "Infraestruturas de Portugal, S. A.", "city": "Almada", "country": "PT"}
    assert record["cpv"] == ["45221121"]
    assert record["nuts"] == ["PT16E"]  # from NOTICE_DATA/PERFORMANCE_NUTS: F14 has no lots
    assert record["status"] == "active"
    assert len(record["lots"]) == 1


def test_corrigendum_variants_reference_and_cancellation(tmp_path):
    content = load(f"{DEV}/23-119901-001-EXP.xml")
    # Without COMPLEMENTARY_INFO/NOTICE_NUMBER_OJ the reference comes from NOTICE_DATA/REF_NOTICE.
    without = content.replace(b"<NOTICE_NUMBER_OJ>2022/S 098-267307</NOTICE_NUMBER_OJ>", b"")
    assert without != content
    assert parse_ted_xml(without)[0].changes == "pub:267307-2022"
    # A corrigendum that says the procedure is cancelled.
    cancelled = content.replace(b"</CHANGES>",
                                b"<INFO_ADD><P>The procedure has been cancelled.</P></INFO_ADD></CHANGES>")
    assert cancelled != content
    assert parse_ted_xml(cancelled)[0].record["status"] == "cancelled"
    # ... but a cancelled site visit does not cancel the procedure.
    visit = content.replace(b"</CHANGES>", b"<INFO_ADD><P>The site visit is cancelled.</P></INFO_ADD></CHANGES>")
    assert parse_ted_xml(visit)[0].record["status"] == "active"


def test_move_public_transport_pin():
    record = parse(f"{PIN}/574944-2018.xml").record  # MOVE form (Regulation 1370/2007)
    assert record["id"] == "ted:574944-2018"
    assert record["stage"] == "planning"
    assert record["title"].startswith("Öffentlicher Dienstleistungsauftrag über öffentliche Personenverkehrsdienste")
    assert record["titles"]["da"] == "Tyskland-Ulm: Offentlig vejtransport"
    assert record["titles"]["en"] == "Germany-Ulm: Public road transport services"
    assert record["buyer"] == {"name": "Landratsamt Alb-Donau-Kreis", "city": "Ulm", "country": "DE"}
    assert record["cpv"] == ["60112000"] and record["nuts"] == ["DE145", "DE144"]
    # No SHORT_DESCR on OBJECT_CONTRACT: the single OBJECT_DESCR's is the description.
    assert record["description"].startswith("Der Alb-Donau-Kreis beabsichtigt als zuständige Behörde")


def test_pin_with_several_objects_numbers_lots_per_object():
    record = parse(f"{PIN}/158721-2021.xml").record  # F01 with 7 OBJECT_CONTRACT
    assert record["stage"] == "planning"
    assert record["title"].startswith("External Service Provision (Extra-muros) in Fixed Price")
    ids = [lot["lot_id"] for lot in record["lots"]]
    assert ids == ["1", "2.1", "2.2", "2.3", "3.1", "3.2", "4.1", "4.2", "5", "6", "7.1", "7.2"]
    assert record["lots"][4]["title"] == "Mobile Communications and Services (Including Helpdesk)"
    assert record["cpv"][:2] == ["72000000", "64200000"]  # each object's CPV_MAIN


def test_document_with_several_original_forms_uses_the_original_language():
    # F02 in EN, FR and DE, all CATEGORY="ORIGINAL"; NOTICE_DATA/LG_ORIG lists EN first.
    record = parse(f"{DEV}/22-104446-001-EXP.xml").record
    assert record["id"] == "ted:107804-2022"
    assert record["language"] == "en"
    assert record["title"] == ("Generation of technical data for the application for authorisation "
                               "of a new food additive in the EU")
    assert record["buyer"]["city"] == "Zürich" and record["buyer"]["country"] == "CH"


def test_dispatcher_detects_and_parses_ted_export():
    content = load(f"{DK}/436913-2017.xml")
    assert detect_format(content) == "ted-xml"
    assert parse_document(content)[0].record["id"] == "ted:436913-2017"


# -- 3. hostile and broken input ---------------------------------------------------------------------

XXE = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE TED_EXPORT [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<TED_EXPORT xmlns="http://publications.europa.eu/resource/schema/ted/R2.0.9/publication" DOC_ID="000001-2020">
<FORM_SECTION><F02_2014 CATEGORY="ORIGINAL" LG="EN"><OBJECT_CONTRACT><TITLE><P>&xxe;</P></TITLE>
</OBJECT_CONTRACT></F02_2014></FORM_SECTION></TED_EXPORT>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<TED_EXPORT><FORM_SECTION><F02_2014><TITLE>&lol9;</TITLE></F02_2014></FORM_SECTION></TED_EXPORT>"""


@pytest.mark.parametrize("content, reason", [
    (XXE, "DTD"),
    (BILLION_LAUGHS, "DTD"),
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"\x00\x01\x02\x03binary\xff\xfe" * 50, "binary"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    (b"%PDF-1.7 not xml at all", "malformed"),
    (b"<TED_EXPORT><FORM_SECTION>", "malformed"),
    (b"<ContractNotice xmlns='urn:oasis:names:specification:ubl:schema:xsd:ContractNotice-2'/>", "TED_EXPORT"),
    (b"<TED_EXPORT xmlns='http://publications.europa.eu/resource/schema/ted/R2.0.9/publication'/>", "FORM_SECTION"),
    (b"<TED_EXPORT><FORM_SECTION><NOTICE_UUID>x</NOTICE_UUID></FORM_SECTION></TED_EXPORT>", "no form"),
    (b"<TED_EXPORT><FORM_SECTION><F02_2014 CATEGORY='ORIGINAL'/></FORM_SECTION></TED_EXPORT>", "publication number"),
], ids=["xxe", "billion-laughs", "empty", "blank", "binary", "png", "pdf", "unclosed", "eforms-root",
        "no-form-section", "no-form", "no-number"])
def test_hostile_or_unusable_input_is_a_one_line_parse_error(content, reason):
    with pytest.raises(ParseError) as caught:
        parse_ted_xml(content)
    message = str(caught.value)
    assert reason.lower() in message.lower() and "\n" not in message
    assert "root:" not in message  # nothing from /etc/passwd


def test_truncated_real_notice_is_a_parse_error():
    content = load(f"{DK}/436913-2017.xml")
    with pytest.raises(ParseError, match="malformed XML"):
        parse_ted_xml(content[: len(content) // 2])


def test_oversized_document_is_refused_before_parsing():
    with pytest.raises(ParseError, match="limit"):
        parse_ted_xml(b"<TED_EXPORT>" + b" " * (21 * 1024 * 1024) + b"</TED_EXPORT>")
