"""Tests of the eForms parser against real and SDK notices: the repo's own copies
(tests/data/corpus, sample/notices) always, every eForms file of the shared corpus when it is there.

Expected values below were read by hand from the XML of each notice.
"""

from __future__ import annotations

import json

import pytest

from tendermatch.crawler.parsers import parse_document
from tendermatch.crawler.parsers.common import ParseError
from tendermatch.crawler.parsers.eforms import parse_eforms
from tests.conftest import CORPUS, ROOT, real_notice, real_notices

SDK = "eforms_sdk/examples/notices"
REAL = "eforms_real/op-ted_ted-rdf-conversion-pipeline/eforms_samples"
NOR = "eforms_national_tailoring/anskaffelser_eforms-sdk-nor"
EFORMS_FOLDERS = (SDK, "eforms_real", "eforms_national_tailoring")
ALL_FILES = sorted(p for folder in EFORMS_FOLDERS for p in (CORPUS / folder).rglob("*.xml"))  # [] without it
IN_REPO_FILES = sorted({p for folder in EFORMS_FOLDERS for p in real_notices(folder, (".xml",))})

# The SDK's deliberately invalid notices that the parser rejects, with why.
REJECTED_INVALID = {
    "INVALID_can_24_empty.xml": "no procurement project",  # only the schema's required elements
    "INVALID_cn_24_empty.xml": "notice identifier",  # empty ProcurementProject, no notice id
    "INVALID_pin-only_24_empty.xml": "no procurement project",
    "INVALID_pin-only_24_minimal.xml": "no procurement project",  # empty cbc:ID, no project
    "INVALID_can_24_stage-1.xml": "notice identifier",  # skeleton: every value empty
    "INVALID_cn_24_stage-1.xml": "notice identifier",
    "INVALID_pin-buyer_24_stage-1.xml": "notice identifier",
    "INVALID_pin-only_24_stage-1.xml": "notice identifier",
    "INVALID_can_24_stage-2.xml": "notice identifier",  # structure complete, all values empty
    "INVALID_cn_24_stage-2.xml": "notice identifier",
}
# INVALID_* notices that are structurally complete and only break business rules that a
# parser cannot check cheaply, so they parse:
# - INVALID_cn_24_multiple.xml: invalid codes ('invalid' e-invoicing, language, URL) in
#   repeated elements of otherwise complete lots.
# - INVALID_change-cn_24_FRA_comments.xml: a change notice that alters fields that may not
#   change (procedure id, CPV, places); only a comparison with the changed notice shows it.
# - eforms_national_tailoring/.../INVALID-national-*.xml: Norwegian national rules (sum of
#   part values, currencies, legal basis text, climate criteria ...).
PARSED_INVALID = ("INVALID_cn_24_multiple.xml", "INVALID_change-cn_24_FRA_comments.xml")


def load(relative: str) -> bytes:
    """A file by its corpus path, from the repo's own copy."""
    return real_notice(relative).read_bytes()


def parse(relative: str):
    notices = parse_eforms(load(relative), url=f"file:///corpus/{relative}")
    assert len(notices) == 1
    return notices[0]




# -- 1. every eForms file: a valid record or a ParseError, nothing else --------------------------


@pytest.mark.corpus
def test_corpus_is_there():
    assert len(ALL_FILES) > 200


@pytest.mark.parametrize("path", [
    *(pytest.param(p, id=str(p.relative_to(ROOT))) for p in IN_REPO_FILES),
    *(pytest.param(p, id=str(p.relative_to(CORPUS)), marks=pytest.mark.corpus) for p in ALL_FILES),
])
def test_every_file_parses_to_valid_records_or_is_rejected(path, validator):
    try:
        notices = parse_eforms(path.read_bytes(), url=path.as_uri())
    except ParseError as error:
        message = str(error)
        assert message and "\n" not in message
        return
    assert path.name not in REJECTED_INVALID
    assert len(notices) == 1
    for notice in notices:
        record = dict(notice.record, sources=["test"])
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(record)]
        assert not errors, errors
        assert record["id"].startswith("eforms:")
        assert record["url"] == path.as_uri()
        assert notice.keys and all(k.startswith(("pub:", "uuid:")) for k in notice.keys)
        assert notice.changes is None or notice.changes.startswith(("pub:", "uuid:"))


@pytest.mark.parametrize("name, reason", sorted(REJECTED_INVALID.items()))
def test_invalid_sdk_examples_are_rejected(name, reason):
    with pytest.raises(ParseError, match=reason):
        parse_eforms(load(f"{SDK}/{name}"))


@pytest.mark.parametrize("name", PARSED_INVALID)
def test_structurally_complete_invalid_examples_parse(name):
    assert parse(f"{SDK}/{name}").record["title"]


@pytest.mark.corpus  # every INVALID_* of the SDK, not only the copies kept in the repo
def test_every_invalid_sdk_example_is_classified():
    names = {p.name for p in (CORPUS / SDK).glob("INVALID_*.xml")}
    assert names == set(REJECTED_INVALID) | set(PARSED_INVALID)


@pytest.mark.parametrize("name", ["X01_EEIG.xml", "X02_registration.xml"])
def test_business_registration_notices_are_not_procurement(name):
    with pytest.raises(ParseError, match="business registration"):
        parse_eforms(load(f"{SDK}/{name}"))


def test_validator_test_sets_and_fragments_are_rejected():
    with pytest.raises(ParseError, match="testSet"):
        parse_eforms(load(f"{NOR}/src/tests/eu/unit/EFORMS-NOR-R006.xml"))
    with pytest.raises(ParseError, match="NoticeTypeCode"):
        parse_eforms(load("eforms_real/uritrejo_eforms-gpp-library/src/test/resources/test_notices/"
                          "test_notice_minimal.xml"))


# -- 2. field-level checks of notices read by hand ---------------------------------------------


def check(record: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert record[key] == value, f"{key}: {record[key]!r} != {value!r}"


def test_danish_notice_from_slagelse():
    notice = parse(f"{REAL}/eforms_sdk_v1.7/eform_subtype_15/665431-2023.xml")
    record = notice.record
    check(record, {
        "id": "eforms:00665431-2023",
        "kind": "tender",
        "stage": "competition",  # qu-sy: qualification system
        "procedure_id": "b4b0d842-c645-4ede-98f0-7917f841d225",
        "notice_version": "01",
        "title": "Gaskonvertering Slagelse Vest 2024",
        "titles": {"da": "Gaskonvertering Slagelse Vest 2024"},
        "language": "da",
        "buyer": {"name": "SK Varme A/S", "country": "DNK", "city": "Slagelse"},
        "supplier": None,
        "cpv": ["45000000", "09323000", "44163120"],
        "nuts": [],
        "value": None,
        "deadline": None,  # a qualification system has no submission deadline
        "published": "2023-10-31",  # publication date, dispatched 2023-10-27
        "reserved": [],
        "social": [],
        "framework_agreement": False,
        "status": "active",
    })
    assert record["description"].startswith("Envafors udvider på vegne af SK Varme A/S fjernvarmenettet")
    assert notice.keys == ["pub:665431-2023", "uuid:94fbd4d3-1344-49ed-b763-9d75f2348622"]
    assert notice.changes is None
    assert [lot["lot_id"] for lot in record["lots"]] == ["LOT-0000"]
    assert record["lots"][0]["title"] == "Gaskonvertering Slagelse Vest 2024"


def test_reserved_pin_call_for_competition():
    notice = parse(f"{SDK}/pin-cfc-social_24.xml")
    record = notice.record
    check(record, {
        "id": "eforms:b9bcefc5-2065-4884-a723-c9d39c5c640f",
        "stage": "competition",
        "title": "Procurement title vol3",
        "buyer": {"name": "ZenithNova Innovations Ltd.", "country": "GRC", "city": "New Horizons, CA"},
        "cpv": ["85000000"],
        "value": None,
        "deadline": "2023-05-31T15:00:00+03:00",  # BT-630 expressions of interest
        "published": "2023-05-26",
        "reserved": ["res-ws"],
        "social": [],
        "framework_agreement": False,
        "status": "active",
    })
    assert notice.keys == ["uuid:b9bcefc5-2065-4884-a723-c9d39c5c640f"]
    assert record["lots"] == [{
        "lot_id": "LOT-0001", "title": "Title vol3", "description": "Lot description text", "cpv": ["85000000"],
        "nuts": [], "value": None, "reserved": ["res-ws"], "social": [],
    }]


def test_maximal_contract_notice():
    record = parse(f"{SDK}/cn_24_maximal.xml").record
    check(record, {
        "id": "eforms:14549263-b47b-4e59-96a1-2d0d13e19343",
        "stage": "competition",
        "notice_version": "03",
        "title": "Procurement Title ---",
        "buyer": {"name": "Financial Adinistration for ...", "country": "LUX", "city": "Luxembourg"},
        "cpv": ["79710000", "79720000", "75121000"],
        "nuts": ["LU000"],
        "value": {"amount": 9999999.99, "currency": "EUR"},
        "deadline": "2023-05-22T20:59:32+01:00",  # BT-1311 requests to participate
        "published": "2023-03-23",
        # LOT-0001 BT-71 res-pub-ser. Both lots' BT-736 reserved execution 'yes' is not a
        # reserved competition: it is a social consideration ("reserved-execution").
        "reserved": ["res-pub-ser"],
        "social": ["acc-all", "reserved-execution"],
        "framework_agreement": True,  # fa-w-rc
        "status": "active",
    })
    # GLO-0001 is a group of lots, not a lot
    assert [lot["lot_id"] for lot in record["lots"]] == ["LOT-0001", "LOT-0002"]
    first, second = record["lots"]
    assert (first["title"], second["title"]) == ("Title ---", "Title Lot 2---")
    assert first["reserved"] == ["res-pub-ser"] and second["reserved"] == []
    assert first["value"] == second["value"] == {"amount": 9999999.99, "currency": "EUR"}
    assert first["cpv"] == second["cpv"] == ["75121000"]
    assert first["social"] == second["social"] == ["acc-all", "reserved-execution"]


@pytest.mark.corpus  # a 1.8 MB notice: too big to keep a copy in the repo
def test_one_hundred_lots():
    (notice,) = parse_eforms((CORPUS / SDK / "cn_24_maximal_100_lots.xml").read_bytes())
    record = notice.record
    assert record["id"] == "eforms:7dac8d90-0883-49f2-87de-519c5992d0bc"
    assert len(record["lots"]) == 100
    assert [lot["lot_id"] for lot in record["lots"]] == [f"LOT-{n:04d}" for n in range(1, 101)]
    assert all(lot["value"] == {"amount": 9999999.99, "currency": "EUR"} for lot in record["lots"])
    assert record["cpv"] == ["79710000", "79720000", "75121000"]
    assert record["reserved"] == ["res-pub-ser"]
    assert record["framework_agreement"] is True
    assert record["deadline"] == "2023-05-22T20:59:32+01:00"


def test_real_notice_with_lots_reserved_for_sheltered_workshops():
    notice = parse(f"{REAL}/eforms_sdk_v1.6/eform_subtype_10/262891-2023.xml")
    record = notice.record
    check(record, {
        "id": "eforms:00262891-2023",
        "stage": "competition",
        "title": "CONTRATO DE SERVICIOS DE LIMPIEZA DE EDIFICIOS MUNICIPALES",
        "language": "es",
        # the buyer wrote its street in the city field
        "buyer": {"name": "AYUNTAMIENTO DE RIPOLL", "country": "ESP", "city": "PLAÇA DE L'AJUNTAMENT,3"},
        "cpv": ["90911200", "90919300"],
        "value": None,
        "deadline": "2023-06-02T14:00:00+02:00",
        "published": "2023-05-02",
        "reserved": ["res-ws"],
        "framework_agreement": False,
    })
    assert notice.keys == ["pub:262891-2023", "uuid:ab85a622-9e41-4585-bcf3-a9b703206641"]
    lots = {lot["lot_id"]: lot for lot in record["lots"]}
    assert list(lots) == ["LOT-0001", "LOT-0002", "LOT-0003", "LOT-0004"]
    assert [lots[i]["reserved"] for i in lots] == [[], [], ["res-ws"], ["res-ws"]]
    assert lots["LOT-0002"]["title"] == "LOTE 2: CENTROS ESCOLARES"
    assert lots["LOT-0002"]["cpv"] == ["90919300"]


def test_framework_agreement_with_a_change_block_without_reference():
    notice = parse(f"{REAL}/eforms_sdk_v1.3/eform_subtype_17/291858-2023.xml")
    check(notice.record, {
        "id": "eforms:00291858-2023",
        "title": "Power BI raamlepingu hange",
        "language": "et",
        "buyer": {"name": "aktsiaselts TALLINNA SADAM", "country": "EST", "city": "Tallinn"},
        "cpv": ["72262000"],
        "deadline": "2023-05-30T10:00:00+03:00",
        "framework_agreement": True,
        "status": "active",
    })
    assert len(notice.record["lots"]) == 1
    assert notice.changes is None  # SDK 1.3 efac:Changes without ChangedNoticeIdentifier


def test_prior_information_notice_with_parts():
    record = parse(f"{SDK}/pin-only_24_lots.xml").record
    check(record, {
        "id": "eforms:199b243b-4daf-4d7d-ba7c-f37f88102480",
        "stage": "planning",
        "title": "Fusion21 Materials Supply Framework — Market Engagement Opportunity",
        "buyer": {"name": "Fusion21 Members Consortium", "country": "GBR", "city": "Prescot"},
        "value": {"amount": 750000000.0, "currency": "EUR"},
        "deadline": None,
        "published": "2020-04-02",
        "framework_agreement": False,
    })
    assert record["cpv"][:3] == ["44110000", "44111000", "31681410"]
    assert [lot["lot_id"] for lot in record["lots"]] == [f"PAR-{n:04d}" for n in range(1, 11)]
    assert record["lots"][1]["title"] == "Electrical Materials"
    assert record["lots"][1]["cpv"] == ["31681410"]


def test_pre_market_consultation_is_planning():
    record = parse(f"{SDK}/E1_minimal.xml").record
    check(record, {
        "id": "eforms:52fe3748-f475-4381-9dbf-31ebb08889e8",
        "stage": "planning",
        "title": "Procedure Name",
        "buyer": {"name": "Buyer Org", "country": "LUX", "city": None},
        "cpv": ["72000000"],
        "published": "2024-12-05",
    })
    assert [(lot["lot_id"], lot["title"]) for lot in record["lots"]] == [("LOT-0001", "Lot Name")]


def test_published_pin_uses_its_publication_number_and_gets_one_lot():
    notice = parse(f"{SDK}/pin-buyer_24_published.xml")
    check(notice.record, {
        "id": "eforms:12345678-2025",
        "stage": "planning",
        "notice_version": "02",
        "title": "Avviso consultazione preliminare mat. dedicato a ventilatore polmonare mod. Monnal T75",
        "buyer": {"name": "IRCCS Policlinico ospedale San Martino", "country": "ITA", "city": "Genova"},
        "cpv": ["33157000"],
        "nuts": ["ITC33"],
        "published": "2025-05-22",
    })
    assert notice.keys == ["pub:12345678-2025", "uuid:e5dc3c2b-3df5-45e0-af7f-399ca201d7e0"]
    assert len(notice.record["lots"]) == 1  # no lots in a PIN for a buyer profile


def test_award_notice_with_supplier():
    record = parse(f"{SDK}/can_24_minimal.xml").record
    check(record, {
        "id": "eforms:65667997-031a-4198-bd25-7225449ef479",
        "stage": "result",
        "title": "Service d'entretien de remise en état et de nettoyage des espaces verts",
        "language": "fr",
        "buyer": {"name": "Rouen Habitat", "country": "FRA", "city": "Rouen Cedex 1"},
        "supplier": "Espaces Verts Lemire",
        "cpv": ["77310000"],
        "nuts": ["FRD22"],
        "value": {"amount": 390697.84, "currency": "EUR"},  # BT-161 notice total, no estimate
        "deadline": None,
        "published": "2019-10-23",
    })
    assert [(lot["lot_id"], lot["title"]) for lot in record["lots"]] == [("LOT-0000", "Agence centre")]


def test_real_award_with_two_suppliers_over_five_lots():
    notice = parse("eforms_real/op-ted_ted-rdf-mapping-eforms/2024-OJS065-00191534.xml")
    record = notice.record
    check(record, {
        "id": "eforms:00191534-2024",
        "stage": "result",
        "notice_version": "02",
        "language": "fr",
        "buyer": {"name": "SPF Intérieur", "country": "BEL", "city": "Bruxelles"},
        "supplier": "Belgo Facility Services; M&G CLEANING",
        "cpv": ["90911000"],
        "nuts": ["BE234", "BE236", "BE257", "BE310"],
        "value": None,
    })
    assert record["title"].startswith("PROCEDURE OUVERTE POUR LE NETTOYAGE DES MAISONS FITT")
    assert set(record["titles"]) == {"fr", "nl"}
    assert record["titles"]["nl"].startswith("OPENBARE PROCEDURE VOOR HET SCHOONMAKEN")
    assert [lot["lot_id"] for lot in record["lots"]] == [f"LOT-000{n}" for n in range(1, 6)]


def test_award_winners_follow_settled_contracts():
    # TEN-0001 (consortium of ORG-0008 and ORG-0009) and TEN-0002 (ORG-0011) won LOT-0001;
    # the subcontractor ORG-0010 is not a supplier.
    record = parse(f"{SDK}/can_24_maximal.xml").record
    assert record["supplier"] == "Gyro Soft SA; The best App Ltd.; Competitor"
    assert record["stage"] == "result"


def test_voluntary_ex_ante_transparency_notice():
    record = parse(f"{SDK}/veat_24.xml").record
    check(record, {
        "id": "eforms:6ea164b2-228c-4ae8-b3b5-26f3946b8300",
        "stage": "dir-awa-pre",
        "title": "Supply of Profiling Beds with Accessories, Pressure Relieving Mattresses and Cushions",
        "buyer": {"name": "Middlesbrough Council", "country": "GBR", "city": "Middlesbrough"},
        "supplier": "Direct Healthcare Services Ltd; Harvest Healthcare Ltd; Invacare Ltd",
        "cpv": ["33000000"],
        "value": {"amount": 350000.0, "currency": "EUR"},
    })


def test_contract_modification():
    notice = parse(f"{SDK}/can-modif_24_value.xml")
    check(notice.record, {
        "stage": "cont-modif",
        "title": "Change Partner",
        "buyer": {"name": "London South Bank University", "country": "GBR", "city": "London"},
        "supplier": "PwC UK LLP",
        "cpv": ["79410000"],
        "value": {"amount": 4500000.0, "currency": "EUR"},
    })
    assert notice.changes is None  # a modification is a notice of its own, not a change notice


def test_change_notice_moves_the_deadline():
    original = parse(f"{SDK}/cn_24_open.xml")
    change = parse(f"{SDK}/change-cn_24_open_dates.xml")
    assert original.record["deadline"] == "2020-04-03T12:00:00+01:00"
    check(change.record, {
        "id": "eforms:71397268-6c47-4f2f-8ab0-f41a26138f81",
        "stage": "competition",
        "procedure_id": "31f258b6-5eb2-4875-8997-affa3cdce27c",
        "title": "Term Contract for a Planned Programme of In-service Inspection and Testing of Electrical Equipment",
        "buyer": {"name": "Renfrewshire Council", "country": "GBR", "city": "Paisley"},
        "cpv": ["71630000", "71314100", "50300000", "31600000"],
        "value": {"amount": 500000.0, "currency": "EUR"},
        "deadline": "2020-06-12T12:00:00+01:00",
        "published": "2020-04-17",
        "status": "active",
    })
    # BT-758 'c4c415ee-...-01' names the original notice (BT-701) without its version
    assert change.changes == "uuid:c4c415ee-ac08-4465-8fa6-57568cf69462"
    assert change.changes in original.keys
    assert len(change.record["lots"]) == 1


def test_cancellation():
    notice = parse(f"{SDK}/change-cn_24_void.xml")
    check(notice.record, {
        "id": "eforms:1d192942-a4a3-4833-8775-ca38f7ec09ca",
        "status": "cancelled",  # BT-140 'cancel'
        "stage": "competition",
        "title": "Provision of IT Services Related to OP IT Systems (EUR-Lex, N-Lex, Search Layer, and Others)",
        "buyer": {"name": "Publications Office of the European Union", "country": "LUX", "city": "Luxembourg"},
        "cpv": ["72230000"],
        "deadline": "2020-02-04T10:00:00+02:00",
        "framework_agreement": True,  # fa-wo-rc
    })
    assert notice.changes == "uuid:f42be27e-09cf-4f0e-a745-63ec689631e6"
    assert notice.changes in parse(f"{SDK}/cn_24_minimal.xml").keys


def test_change_notice_referring_to_a_publication_number():
    notice = parse(f"{REAL}/eforms_sdk_v1.10/eform_subtype_17/740039-2023.xml")
    check(notice.record, {
        "id": "eforms:00740039-2023",
        "title": "Sukcesywne dostawy części zamiennych układu hamulcowego do taboru autobusowego",
        "language": "pl",
        "buyer": {"name": "MIEJSKIE PRZEDSIĘBIORSTWO KOMUNIKACYJNE SPÓŁKA AKCYJNA W KRAKOWIE",
                  "country": "POL", "city": "Kraków"},
        "cpv": ["34320000"],
        "nuts": ["PL213"],
        "deadline": "2023-12-08T12:30:00+01:00",
        "status": "active",  # BT-140 cor-buy: a correction, not a cancellation
    })
    assert notice.changes == "pub:711911-2023"


def test_national_change_form_type():
    notice = parse(f"{REAL}/eforms_sdk_v1.6/eform_subtype_23/775348-2023.xml")
    assert notice.record["stage"] == "change"  # NoticeTypeCode listName="change" (corr)
    assert notice.record["buyer"] == {"name": "Municipiul Timisoara", "country": "ROU", "city": "Timisoara"}
    assert notice.changes == "pub:422781-2023"


def test_norwegian_doffin_notice():
    notice = parse(f"{NOR}/from_history/src/tests/national/test/varmeanlegg.xml")
    check(notice.record, {
        "id": "eforms:063de172-79a9-47bf-ab29-438813ccee7c",
        "stage": "competition",
        "title": "Varmeanlegg Bremanger Bu og Servicesenter",
        "titles": {"no": "Varmeanlegg Bremanger Bu og Servicesenter"},
        "language": "no",
        "buyer": {"name": "Bremanger kommune", "country": "NOR", "city": "Svelgen"},
        "cpv": ["45000000", "45100000", "45200000", "45300000", "51000000"],
        "nuts": ["NO0A2"],
        "value": {"amount": 2800000.0, "currency": "NOK"},
        "deadline": "2023-11-22T12:00:00+01:00",
        "published": "2023-10-25",
        "reserved": [],
        "framework_agreement": False,
    })
    assert notice.record["lots"][0]["value"] == {"amount": 2800000.0, "currency": "NOK"}


def test_norwegian_eu_notice_in_nok():
    record = parse(f"{NOR}/src/tests/eu/test/cn_24.xml").record
    assert record["buyer"]["name"] == "Flekkefjord Kommune"
    assert record["buyer"]["country"] == "NOR"
    assert record["value"] == {"amount": 16000000.0, "currency": "NOK"}
    assert record["cpv"][:3] == ["50000000", "50700000", "45422000"]


def test_social_objectives_on_every_lot():
    record = parse(f"{REAL}/eforms_sdk_v1.9/eform_subtype_20/650276-2023.xml").record
    check(record, {
        "id": "eforms:00650276-2023",
        "language": "it",
        "buyer": {"name": "Comune di Modena", "country": "ITA", "city": "Modena"},
        "cpv": ["85300000"],
        "nuts": ["ITH54"],
        "value": {"amount": 1966486.0, "currency": "EUR"},
        "deadline": "2023-11-24T13:00:00+01:00",
        "social": ["acc-all", "work-cond", "opp", "gen-eq"],
        "reserved": [],
    })
    assert [lot["value"] for lot in record["lots"]] == [
        {"amount": 1021378.0, "currency": "EUR"}, {"amount": 945108.0, "currency": "EUR"}]
    assert all(lot["social"] == ["acc-all", "work-cond", "opp", "gen-eq"] for lot in record["lots"])


def test_social_contract_notice_with_reserved_execution():
    record = parse(f"{SDK}/cn-social_25.xml").record
    check(record, {
        "title": "At the End of the Tunnel vol3",
        "value": {"amount": 1231.0, "currency": "BWP"},
        "deadline": "2023-08-11T15:00:00+03:00",
        "reserved": [],  # BT-71 'none'; BT-736 reserved execution 'yes' is a social consideration
        "social": ["opp", "acc-all", "reserved-execution"],
    })


def test_soc_obj_strategic_procurement_code():
    # No corpus notice uses BT-06 'soc-obj'; add it to a copy of a real notice.
    content = load(f"{SDK}/cn-social_25.xml").replace(
        b'<cbc:ProcurementTypeCode listName="social-objective">opp</cbc:ProcurementTypeCode>',
        b'<cbc:ProcurementTypeCode listName="strategic-procurement">soc-obj</cbc:ProcurementTypeCode>',
    )
    record = parse_eforms(content)[0].record
    assert record["social"] == ["soc-obj", "acc-all", "reserved-execution"]


def test_dispatcher_routes_eforms_here():
    notices = parse_document(load(f"{SDK}/cn_24_minimal.xml"), url="https://example.test/n")
    assert notices[0].record["id"] == "eforms:f42be27e-09cf-4f0e-a745-63ec689631e6"
    assert notices[0].record["url"] == "https://example.test/n"


# -- 3. hostile and broken input ------------------------------------------------------------------

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE ContractNotice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ContractNotice xmlns="urn:oasis:names:specification:ubl:schema:xsd:ContractNotice-2"
    xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
    xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2">
  <cbc:ID schemeName="notice-id">&xxe;</cbc:ID>
  <cbc:NoticeTypeCode listName="competition">cn-standard</cbc:NoticeTypeCode>
  <cac:ProcurementProject><cbc:Name languageID="ENG">&xxe;</cbc:Name></cac:ProcurementProject>
</ContractNotice>
"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ContractNotice xmlns="urn:oasis:names:specification:ubl:schema:xsd:ContractNotice-2">&lol9;</ContractNotice>
"""


def test_xxe_is_refused_without_reading_the_file():
    with pytest.raises(ParseError) as error:
        parse_eforms(XXE)
    assert "root:" not in str(error.value)


def test_xxe_after_the_xml_declaration_with_other_case_is_refused():
    with pytest.raises(ParseError):
        parse_eforms(XXE.replace(b"<!DOCTYPE", b"<!doctype"))


def test_xxe_behind_a_long_comment_reads_no_file():
    # xmlsafe looks for a DTD in the first 64 KB only; behind that the parser still loads
    # no external entity, so the notice has neither id nor title and is refused.
    padded = b'<?xml version="1.0"?>\n<!--' + b"x" * 70_000 + b"-->\n" + XXE.split(b"?>", 1)[1]
    with pytest.raises(ParseError) as error:
        parse_eforms(padded)
    assert "root:" not in str(error.value)


def test_billion_laughs_is_refused():
    with pytest.raises(ParseError):
        parse_eforms(BILLION_LAUGHS)


def test_truncated_notice_is_refused():
    content = load(f"{REAL}/eforms_sdk_v1.7/eform_subtype_15/665431-2023.xml")
    with pytest.raises(ParseError, match="malformed"):
        parse_eforms(content[: len(content) // 2])


@pytest.mark.parametrize("content", [b"", b"   \n\t", bytes(range(256)) * 4, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"])
def test_empty_and_binary_content_is_refused(content):
    with pytest.raises(ParseError):
        parse_eforms(content)


def test_other_xml_is_refused():
    with pytest.raises(ParseError, match="not an eForms notice"):
        parse_eforms(b"<TED_EXPORT><CODED_DATA_SECTION/></TED_EXPORT>")
    with pytest.raises(ParseError, match="not an eForms notice"):
        # the right local name in the wrong namespace
        parse_eforms(b'<ContractNotice xmlns="urn:example"><ID>1</ID></ContractNotice>')


def test_notice_without_procurement_project_is_refused():
    content = (
        b'<ContractNotice xmlns="urn:oasis:names:specification:ubl:schema:xsd:ContractNotice-2" '
        b'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'
        b'<cbc:ID>abc</cbc:ID><cbc:NoticeTypeCode listName="competition">cn-standard</cbc:NoticeTypeCode>'
        b"</ContractNotice>"
    )
    with pytest.raises(ParseError, match="ProcurementProject"):
        parse_eforms(content)


def test_non_finite_amounts_are_dropped():
    content = load(f"{SDK}/cn_24_open.xml").replace(
        b'<cbc:EstimatedOverallContractAmount currencyID="EUR">500000</cbc:EstimatedOverallContractAmount>',
        b'<cbc:EstimatedOverallContractAmount currencyID="EUR">NaN</cbc:EstimatedOverallContractAmount>',
    )
    assert b"NaN" in content
    record = parse_eforms(content)[0].record
    assert record["value"] is None
    json.dumps(record, allow_nan=False)


def test_lot_title_stands_in_for_a_missing_procedure_title():
    content = load(f"{SDK}/E1_minimal.xml").replace(b'<cbc:Name languageID="ENG">Procedure Name</cbc:Name>', b"")
    assert b"Procedure Name" not in content
    record = parse_eforms(content)[0].record
    assert record["title"] == "Lot Name"
    assert record["titles"] == {"en": "Lot Name"}
