"""OCDS parser: every OCDS file (the repo's own copies always, the shared corpus's when it is
there), hand-checked releases, and hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tendermatch.crawler.parsers.common import ParseError
from tendermatch.crawler.parsers.ocds import parse_ocds
from tests.conftest import CORPUS, ROOT, SAMPLE, SCHEMA_PATH, SMALL_CORPUS, real_notices

OCDS = CORPUS / "ocds"
SCHEMA = SCHEMA_PATH
# The hand-checked files, from the repo's own copies (tests/data/SOURCES.md), in the corpus's layout.
UK = SMALL_CORPUS / "ocds" / "apa999_CFServer1"  # the JSON-lines files: excerpts of a few releases
STANDARD = SMALL_CORPUS / "ocds" / "open-contracting_standard" / "docs" / "examples"
FICTIONAL = SMALL_CORPUS / "ocds" / "open-contracting_sample-data" / "fictional-example" / "1.1"
WALES = SAMPLE / "ocds" / "wales_sell2wales_2025_first20.jsonl"  # the corpus file's first 20 lines


def corpus_files() -> list[Path]:
    if not OCDS.is_dir():
        return []
    return sorted(p for p in OCDS.rglob("*") if p.suffix in (".json", ".jsonl") and p.is_file())


def jsonl_line(path: Path, number: int) -> bytes:
    return path.read_bytes().splitlines()[number - 1]


def releases_of(path: Path, ocid: str) -> bytes:
    """The lines of a JSON-lines file that hold releases of ``ocid``, as they stand."""
    lines = [line for line in path.read_bytes().splitlines() if line.strip() and json.loads(line)["ocid"] == ocid]
    assert lines, f"{ocid} not in {path}"
    return b"\n".join(lines)


def by_id(notices, record_id):
    found = [n for n in notices if n.record["id"] == record_id]
    assert len(found) == 1, [n.record["id"] for n in notices][:10]
    return found[0]




# ---------------------------------------------------------------- the whole corpus


@pytest.mark.parametrize("path", [
    *(pytest.param(p, id=str(p.relative_to(ROOT))) for p in real_notices("ocds", (".json", ".jsonl"))),
    *(pytest.param(p, id=str(p.relative_to(OCDS)), marks=pytest.mark.corpus) for p in corpus_files()),
])
def test_corpus_file_gives_schema_valid_records_or_parse_error(path, validator):
    content = path.read_bytes()
    try:
        notices = parse_ocds(content, url=path.as_uri())
    except ParseError as error:
        assert "\n" not in str(error)
        return
    for notice in notices:
        record = dict(notice.record, sources=["test"])
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(record)]
        assert not errors, (notice.record["id"], errors)
        assert notice.record["id"].startswith("ocds:")
        assert notice.keys[0] == "ocid:" + notice.record["id"][len("ocds:"):]
        if path.name != "closed_single_supplier.json":  # a bare supplier update: nothing to title it with
            assert notice.record["title"], notice.record["id"]


@pytest.mark.corpus  # the whole JSON-lines files (2.7 MB); the repo keeps excerpts
def test_every_ocid_in_the_jsonl_files_becomes_one_notice():
    for name in (
        "uk_contracts_finder_2025_releases.jsonl",
        "scotland_pcs_2019_releases.jsonl",
        "wales_sell2wales_2025_releases.jsonl",
    ):
        content = (OCDS / "apa999_CFServer1" / name).read_bytes()
        ocids = {json.loads(line)["ocid"] for line in content.splitlines() if line.strip()}
        notices = parse_ocds(content)
        assert sorted(n.record["id"] for n in notices) == sorted(f"ocds:{o}" for o in ocids), name


def test_empty_release_package_is_not_an_error():
    assert parse_ocds((UK / "contracts_finder_search_package_CFSearchStr0.json").read_bytes()) == []


def test_file_without_releases_is_refused():
    with pytest.raises(ParseError, match="not OCDS"):
        parse_ocds((STANDARD / "frameworks" / "extensions_block.json").read_bytes())


# ---------------------------------------------------------------- hand-checked releases


def test_uk_contracts_finder_vcse_tender():
    (notice,) = parse_ocds(releases_of(UK / "uk_contracts_finder_2025_excerpt.jsonl",  # line 64 of the corpus file
                                       "ocds-b5fd17-160abf38-c8ab-4596-ba91-4388a3d1697a"))
    r = notice.record
    assert r["id"] == "ocds:ocds-b5fd17-160abf38-c8ab-4596-ba91-4388a3d1697a"
    assert notice.keys == ["ocid:ocds-b5fd17-160abf38-c8ab-4596-ba91-4388a3d1697a"]
    assert (r["kind"], r["stage"], r["status"]) == ("tender", "competition", "active")
    assert r["title"] == "Martock Parish Council Village and Cemetery Maintenance Contract"
    assert r["language"] == "en"
    assert r["buyer"] == {"name": "Martock Parish Council", "country": "England", "city": "Martock"}
    assert r["cpv"] == ["50000000", "77000000"]
    assert r["nuts"] == []  # only a postcode, no NUTS code
    assert r["value"] == {"amount": 10000.0, "currency": "GBP"}
    assert r["deadline"] == "2025-03-17T10:00:00+00:00"
    assert r["published"] == "2025-03-11"
    assert r["url"] == "https://www.contractsfinder.service.gov.uk/Notice/a3f33caf-8cb9-4d27-b048-328fe5dce0a1"
    # VCSE suitability is not a reservation, and the text states no social clause
    assert r["reserved"] == [] and r["social"] == []
    assert r["framework_agreement"] is False
    assert len(r["lots"]) == 1 and r["lots"][0]["cpv"] == ["50000000", "77000000"]


def test_uk_contracts_finder_award_and_duplicate_lines():
    content = releases_of(UK / "uk_contracts_finder_2025_excerpt.jsonl",  # lines 1 and 2 of the corpus file
                          "ocds-b5fd17-e3b5f385-5989-4cf1-8849-01c247fc9c30")
    assert content.count(b"\n") == 1
    (notice,) = parse_ocds(content)  # the same release twice -> one notice
    r = notice.record
    assert r["id"] == "ocds:ocds-b5fd17-e3b5f385-5989-4cf1-8849-01c247fc9c30"
    assert (r["kind"], r["stage"], r["status"]) == ("tender", "result", "closed")
    assert r["title"] == "Parking Pilot - CEO"
    assert r["supplier"] == "Marstons holdings plc"
    assert r["buyer"] == {"name": "London Borough of Merton", "country": "England", "city": "Morden"}
    assert r["value"] == {"amount": 372032.0, "currency": "GBP"}
    assert r["cpv"] == ["63712400"]
    assert r["url"] == "https://www.contractsfinder.service.gov.uk/Notice/2a1e3359-87a0-4fdd-ac61-20d5e6520a13"


def test_uk_html_entities_are_decoded():
    (notice,) = parse_ocds(releases_of(UK / "uk_contracts_finder_2025_excerpt.jsonl",  # line 156 of the corpus file
                                       "ocds-b5fd17-8f3244de-9267-4db2-95fe-089010d5aa5f"))
    assert notice.record["title"] == (
        "Our Lady of the Magnificat - Home to School Transport for St Bede's Catholic Middle School"
    )


def test_scottish_framework_with_lots_and_nuts():
    (notice,) = parse_ocds(releases_of(UK / "scotland_pcs_2019_excerpt.jsonl", "ocds-r6ebe6-0000580267"))  # line 16
    r = notice.record
    assert r["id"] == "ocds:ocds-r6ebe6-0000580267"
    assert r["title"] == "Forestry and Arboriculture Services Framework Agreement"
    assert r["buyer"] == {"name": "The City of Edinburgh Council", "country": None, "city": "Edinburgh"}
    assert r["language"] == "en"
    assert r["framework_agreement"] is True
    assert r["deadline"] == "2019-05-24T12:00:00+00:00"
    assert r["published"] == "2019-04-18"
    assert r["value"] == {"amount": 500000.0, "currency": "GBP"}
    assert r["url"] == "https://www.publiccontractsscotland.gov.uk/search/show/search_view.aspx?ID=APR352026"
    assert [lot["lot_id"] for lot in r["lots"]] == ["1", "2"]
    assert r["lots"][0]["title"] == (
        "The City of Edinburgh, East Lothian, Midlothian, Fife and the Scottish Borders Councils"
    )
    assert r["lots"][1]["title"] == "West Lothian Council"
    assert r["lots"][0]["nuts"] == ["UKM"] and r["lots"][1]["nuts"] == ["UKM78"]
    assert r["nuts"] == ["UKM", "UKM78"]
    assert r["cpv"][0] == "77200000"  # the main CPV first
    assert set(r["cpv"]) == {"77200000", "77230000", "77231000", "77211300", "77211400", "77211500", "77341000"}
    assert r["lots"][1]["cpv"] == ["77230000", "77231000", "77211300", "77211400", "77211500", "77341000"]


def test_scottish_reserved_for_sheltered_workshops():
    (notice,) = parse_ocds(releases_of(UK / "scotland_pcs_2019_excerpt.jsonl", "ocds-r6ebe6-0000580540"))  # line 41
    r = notice.record
    assert r["title"] == "Supply of Medical Aids to Fife Council Community Equipment Stores (FCES)"
    assert r["reserved"] == ["res-ws"]
    assert r["nuts"] == ["UKM72"]
    assert r["framework_agreement"] is True


def test_welsh_tender_with_three_lots():
    (notice,) = parse_ocds(jsonl_line(WALES, 5))
    r = notice.record
    assert r["id"] == "ocds:ocds-kuma6s-148372"
    assert r["title"] == "Contract for the provision of Wales Airshow Food and Drink Concessions"
    assert r["buyer"] == {"name": "City & County of Swansea", "country": None, "city": "Swansea"}
    assert r["value"] == {"amount": 210000.0, "currency": "GBP"}
    assert r["deadline"] == "2025-03-28T12:00:00+00:00"
    assert r["published"] == "2025-02-21"
    assert r["url"] == "https://www.sell2wales.gov.wales/search/show/search_view.aspx?ID=FEB497892"
    assert [(lot["lot_id"], lot["title"]) for lot in r["lots"]] == [
        ("1", "Catering"), ("2", "Public Bars"), ("3", "Ice Cream Concession"),
    ]
    assert r["lots"][2]["cpv"] == ["55520000", "15555100"]
    assert r["cpv"] == ["55520000", "15555100"]
    assert r["nuts"] == ["UKL18"]
    assert r["framework_agreement"] is False
    assert (r["stage"], r["status"], r["kind"]) == ("competition", "active", "tender")


def test_framework_first_stage_example():
    (notice,) = parse_ocds((STANDARD / "frameworks" / "closed_single_first_stage.json").read_bytes())
    r = notice.record
    assert r["id"] == "ocds:ocds-r6ebe6-9af22e2f-5307-4e98-bff6-1ebffbff343d"
    assert r["title"] == "Storage and Distribution of Seasonal Influenza Vaccine"
    assert r["framework_agreement"] is True
    assert r["deadline"] == "2019-11-13T12:00:00+00:00"  # expressionOfInterestDeadline
    assert r["value"] == {"amount": 1120000.0, "currency": "GBP"}
    assert r["stage"] == "competition"
    assert r["language"] is None
    assert "pub:478648-2019" in notice.keys  # the release id is the OJ S number


def test_framework_award_has_suppliers():
    (notice,) = parse_ocds((STANDARD / "frameworks" / "open_multiple_supplier.json").read_bytes())
    r = notice.record
    assert r["stage"] == "result"
    assert r["title"] == "Convenio Marco de Artículos de Escritorio y Papelería"
    assert r["supplier"] == "RODRIGO ALEJANDRO VIDAL CAMPOS; COMERCIALIZADORA E IMPORTADORA GRUPO RAVC SPA"


def test_unsuccessful_tender_example():
    (notice,) = parse_ocds((STANDARD / "unsuccessful_tender" / "tender.json").read_bytes())
    r = notice.record
    assert r["id"] == "ocds:ocds-03ad3f-331547-1"
    assert r["title"] == "SERVICIO DE RASTREO SATELITAL"
    assert r["status"] == "closed"  # finalStatus 'unsuccessful': nothing to bid on any more
    assert r["buyer"]["name"] == "Municipalidad de Loma Plata"
    assert r["value"] == {"amount": 8100000.0, "currency": "PYG"}
    assert r["deadline"] == "2017-05-11T09:30:00-04:00"  # offset kept
    assert [lot["lot_id"] for lot in r["lots"]] == ["+GmottIGrAE="]
    assert r["cpv"] == []  # the Paraguayan catalogue is not CPV


def test_planning_example_uses_budget_description_as_title():
    (notice,) = parse_ocds((STANDARD / "unsuccessful_tender" / "planning.json").read_bytes())
    r = notice.record
    assert r["stage"] == "planning"
    assert r["title"] == "ADQUISISCION DE MAQUINARIA, IMPLENTO Y VEHICULO"
    assert r["value"] == {"amount": 700000000.0, "currency": "PYG"}


def test_portuguese_contract_is_an_agreement():
    fixtures = SMALL_CORPUS / "ocds" / "open-contracting_kingfisher-process" / "tests" / "fixtures"
    notices = parse_ocds((fixtures / "collection_file.json").read_bytes())
    assert len(notices) == 100
    r = by_id(notices, "ocds:ocds-px0z7d-17998-18005-1").record
    assert r["title"] == "Prestação de Serviços de Limpeza – Janeiro de 2009"
    assert r["language"] == "pt"
    assert (r["kind"], r["stage"]) == ("agreement", "result")
    assert r["supplier"] == "Nova Serviços, Lda."
    assert (r["valid_from"], r["valid_until"]) == ("2008-12-23", "2009-01-23")
    assert r["status"] == "closed"  # the contract is 'terminated'
    assert r["buyer"] == {"name": "Instituto Politécnico de Leiria", "country": "PT", "city": "Leiria"}
    assert r["cpv"] == ["90910000"]
    assert r["value"] == {"amount": 8360.0, "currency": "EUR"}
    assert r["url"] == "http://www.base.gov.pt/Base/pt/Pesquisa/Contrato?a=18005"
    # a Portuguese release without title or dated contract: the description is the title
    first = by_id(notices, "ocds:ocds-px0z7d-5052-5001-1").record
    assert first["title"] == "Aquisição de torneiras para as cubas da cozinha, para o refeitório da Escola EB1 de Lagoa"
    assert (first["kind"], first["stage"], first["supplier"]) == ("tender", "result", "Coelho & Quintas, Lda")


def test_releases_of_one_ocid_are_merged_to_the_latest():
    (notice,) = parse_ocds((FICTIONAL / "ocds-213czf-000-00001.json").read_bytes())
    r = notice.record
    assert r["id"] == "ocds:ocds-213czf-000-00001"
    assert r["title"] == "Planned cycle lane improvements"
    assert (r["kind"], r["stage"], r["status"]) == ("agreement", "result", "active")
    assert r["supplier"] == "AnyCorp Cycle Provision"
    assert (r["valid_from"], r["valid_until"]) == ("2010-07-01", "2011-06-30")
    assert r["cpv"] == ["45233130", "45233162"]  # '45233130.0' in the data
    assert r["published"] == "2011-01-10"  # the implementation release, the latest
    assert r["buyer"] == {"name": "London Borough of Barnet", "country": "United Kingdom", "city": "London"}
    assert r["url"] == "http://example.com/tender-notices/ocds-213czf-000-00001-01.html"
    # the record package (compiledRelease) says the same
    (compiled,) = parse_ocds((FICTIONAL / "record" / "ocds-213czf-000-00001.json").read_bytes())
    for key in ("title", "kind", "supplier", "valid_from", "valid_until", "cpv", "buyer"):
        assert compiled.record[key] == r[key], key
    # the same package read as JSON lines, in reverse order
    releases = json.loads((FICTIONAL / "ocds-213czf-000-00001.json").read_bytes())["releases"]
    lines = b"\n".join(json.dumps(release).encode() for release in reversed(releases))
    (from_lines,) = parse_ocds(lines)
    assert from_lines.record == r


def test_single_stage_files_of_the_fictional_example():
    stages = {
        "ocds-213czf-000-00001-01-planning.json": ("planning", "tender"),
        "ocds-213czf-000-00001-02-tender.json": ("competition", "tender"),
        "ocds-213czf-000-00001-03-tenderAmendment.json": ("change", "tender"),
        "ocds-213czf-000-00001-04-award.json": ("result", "tender"),
        "ocds-213czf-000-00001-05-contract.json": ("result", "agreement"),
    }
    for name, (stage, kind) in stages.items():
        (notice,) = parse_ocds((FICTIONAL / name).read_bytes())
        assert (notice.record["stage"], notice.record["kind"]) == (stage, kind), name


def test_mexican_release_package_merges_two_releases():
    realdata = SMALL_CORPUS / "ocds" / "open-contracting_ocdskit" / "tests" / "fixtures" / "realdata"
    (notice,) = parse_ocds((realdata / "release-package-1.json").read_bytes())
    r = notice.record
    assert r["id"] == "ocds:OCDS-87SD3T-AD-SF-DRM-063-2015"
    assert r["title"] == "ARRENDAMIENTO DE BIENES INFORMÁTICOS"
    assert r["language"] == "es"
    assert r["buyer"] == {"name": "SECRETARÍA DE FINANZAS", "country": "MX", "city": "MÉXICO D. F."}
    assert r["value"] == {"amount": 1311264.0, "currency": "MXN"}
    assert r["deadline"] == "2015-12-22T00:00:00-06:00"


# ---------------------------------------------------------------- synthetic releases


def release(**overrides):
    base = {
        "ocid": "ocds-test-1",
        "id": "1",
        "date": "2026-11-20T10:00:00+01:00",
        "tag": ["tender"],
        "language": "da",
        "buyer": {"id": "b1", "name": "Odense Kommune"},
        "parties": [{"id": "b1", "name": "Odense Kommune", "roles": ["buyer"],
                     "address": {"locality": "Odense", "countryName": "Danmark"}}],
        "tender": {
            "id": "T1",
            "title": "Rengøring af skoler",
            "description": "Kontrakten indeholder en social klausul om lærlinge.",
            "status": "active",
            "value": {"amount": 1500000, "currency": "DKK"},
            "tenderPeriod": {"endDate": "2027-01-15T12:00:00+01:00"},
            "items": [{"id": "1", "classification": {"scheme": "CPV", "id": "90919300-5"},
                       "deliveryAddresses": [{"region": "DK031"}]}],
        },
    }
    base.update(overrides)
    return base


def test_single_release_danish_with_social_clause():
    (notice,) = parse_ocds(json.dumps(release()).encode(), url="https://example.org/ocds/1")
    r = notice.record
    assert r["id"] == "ocds:ocds-test-1"
    assert r["language"] == "da"
    assert r["buyer"] == {"name": "Odense Kommune", "country": "Danmark", "city": "Odense"}
    assert r["cpv"] == ["90919300"] and r["nuts"] == ["DK031"]
    assert r["deadline"] == "2027-01-15T12:00:00+01:00"
    assert r["value"] == {"amount": 1500000.0, "currency": "DKK"}
    assert r["social"] == ["clause"]
    assert r["url"] == "https://example.org/ocds/1"  # no notice document: the document's url


def test_cancellation_marks_the_notice_cancelled():
    content = json.dumps({"releases": [
        release(),
        release(id="2", date="2026-11-25T10:00:00+01:00", tag=["tenderCancellation"],
                tender={"id": "T1", "status": "cancelled"}),
    ]}).encode()
    (notice,) = parse_ocds(content)
    r = notice.record
    assert r["status"] == "cancelled"
    assert r["stage"] == "change"
    assert r["title"] == "Rengøring af skoler"  # kept from the earlier release
    (only_status,) = parse_ocds(
        json.dumps(release(tender={"title": "Annulleret udbud", "status": "cancelled"})).encode()
    )
    assert only_status.record["status"] == "cancelled"


def test_bad_release_inside_a_good_package_is_skipped():
    package = {"releases": [
        release(), release(ocid="ocds-test-2", tender="not an object"), "not a release", release(ocid="ocds-test-3"),
    ]}
    notices = parse_ocds(json.dumps(package).encode())
    assert [n.record["id"] for n in notices] == ["ocds:ocds-test-1", "ocds:ocds-test-3"]


def test_record_package_without_compiled_release_uses_embedded_releases():
    package = {"records": [{"ocid": "ocds-test-1", "releases": [
        {"url": "https://example.org/r/1", "date": "2026-11-20T10:00:00Z", "tag": ["tender"]},
        release(),
    ]}]}
    (notice,) = parse_ocds(json.dumps(package).encode())
    assert notice.record["title"] == "Rengøring af skoler"
    only_links = {"records": [
        {"ocid": "ocds-test-1", "releases": [{"url": "https://example.org/r/1", "tag": ["tender"]}]},
    ]}
    with pytest.raises(ParseError, match="no usable OCDS release"):
        parse_ocds(json.dumps(only_links).encode())


# ---------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"\x00\x01\x02binary\x00", "binary"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "binary"),
        (b"<html><body>not json</body></html>", "not JSON"),
        (b'{"releases": [{"ocid": "x", "tender": {"title": "cut', "malformed JSON"),
        (b'{"releases": "none"}', "'releases' is not a list"),
        (b'{"records": {"ocid": "x"}}', "'records' is not a list"),
        (b'{"ocid": "x", "tender": "a string"}', "'tender' is not an object"),
        (b'{"ocid": "x", "awards": {"id": 1}}', "'awards' is not a list"),
        (b'{"ocid": "x", "tender": {"items": "none"}}', "'tender.items' is not a list"),
        (b'{"ocid": 17}', "no ocid"),
        (b'{"releases": [1, 2, "x"]}', "no usable OCDS release"),
        (b'{"foo": 1}', "not OCDS"),
        (b"[1, 2]", "no usable OCDS release"),
        (b'{"ocid": "a"}\n{"ocid": "b", "tender": \n{"ocid": "c"}', "line 2"),
        (b'{"ocid": "a", "tender": {"value": {"amount": NaN, "currency": "DKK"}}}', "malformed JSON"),
        (b"\xff\xfe{\x00", "not"),
        (b'{"ocid": "a", "tender": {"title": "\xff\xfe"}}', "UTF-8"),
        (b"[" * 100000, "JSON"),
    ],
)
def test_hostile_input_raises_parse_error(content, message):
    with pytest.raises(ParseError) as error:
        parse_ocds(content)
    assert message.lower() in str(error.value).lower()
    assert "\n" not in str(error.value)


def test_wrong_types_deep_inside_are_ignored_not_fatal():
    weird = release(tender={
        "title": "Vinduespolering",
        "value": {"amount": "lots", "currency": 5},
        "tenderPeriod": "tomorrow",
        "items": [None, {"classification": "CPV"}, {"classification": {"scheme": "CPV", "id": ["x"]}}],
        "lots": [{"id": {"x": 1}, "title": 7}, "lot"],
        "techniques": [],
        "documents": [{"documentType": "tenderNotice", "url": "javascript:alert(1)"}],
    }, parties=[7, {"roles": "buyer"}], buyer={"name": ["x"]}, awards=[None, {"suppliers": "x"}],
        tag="tender", language=5)
    (notice,) = parse_ocds(json.dumps(weird).encode())
    r = notice.record
    assert r["title"] == "Vinduespolering"
    assert r["value"] is None and r["deadline"] is None and r["buyer"] is None and r["url"] is None
    assert r["language"] is None
    assert [lot["lot_id"] for lot in r["lots"]] == ["1"]  # the string "lot" is not a lot


def test_fuzzed_corpus_like_input_never_raises_anything_else():
    import random

    seed_release = json.dumps(release()).encode()
    rng = random.Random(4)
    for _ in range(300):
        data = bytearray(seed_release)
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(data))
            data[position] = rng.choice(b'{}[]":,0123456789abcdefnul \x00\xff')
        try:
            parse_ocds(bytes(data))
        except ParseError:
            pass
