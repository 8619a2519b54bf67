"""Tests of the TED search API JSON parser: v2-style records (base64 / plain XML in
``content``), TED-SWS notice objects, and v3 search pages (light records, read_search_page).

Expected values of the corpus records were read by hand from the XML in their ``content``.
The v3 pages are built here in the shape of the TED Search API v3 response (the corpus has
no v3 page); their values are those of real notices.
"""

from __future__ import annotations

import base64
import json

import pytest

from tendermatch.crawler.parsers import detect_format, parse_document
from tendermatch.crawler.parsers.common import ParseError
from tendermatch.crawler.parsers.ted_api import parse_ted_api, read_search_page
from tests.conftest import CORPUS, real_notice, real_notices

FOLDER = "ted_api_json/op-ted_ted-rdf-conversion-pipeline"
API = CORPUS / FOLDER

ALL_FILES = sorted(API.rglob("*.json"))  # [] without the corpus
IN_REPO_FILES = real_notices(FOLDER, (".json",))


def load(relative: str) -> bytes:
    """A file by its path under the corpus's API folder, from the repo's own copy."""
    return real_notice(f"{FOLDER}/{relative}").read_bytes()


def parse(relative: str):
    notices = parse_ted_api(load(relative), url=f"file:///corpus/{relative}")
    assert len(notices) == 1
    return notices[0]




def valid(validator, notice) -> None:
    record = {**notice.record, "sources": ["test"]}
    errors = [f"{e.message} at {list(e.path)}" for e in validator.iter_errors(record)]
    assert not errors, errors


def eforms_available() -> bool:
    try:
        from tendermatch.crawler.parsers import eforms  # noqa: F401
    except ImportError:
        return False
    return True


# -- 1. every corpus JSON: valid records or a ParseError ---------------------------------------------


@pytest.mark.parametrize("files, at_least", [
    pytest.param(IN_REPO_FILES, 5, id="in-repo"),
    pytest.param(ALL_FILES, 10, id="corpus", marks=pytest.mark.corpus),
])
def test_every_corpus_json_gives_valid_records_or_a_parse_error(files, at_least, validator):
    assert len(files) >= at_least
    parsed = 0
    for path in files:
        relative = path.name
        if relative.startswith("eform-") and not eforms_available():
            continue
        try:
            notices = parse_ted_api(path.read_bytes(), url=path.as_uri())
        except ParseError as error:
            assert str(error) and "\n" not in str(error)
            continue
        assert notices, relative
        for notice in notices:
            valid(validator, notice)
            assert any(key.startswith("pub:") for key in notice.keys), relative
        parsed += 1
    assert parsed == len(files) - (0 if eforms_available() else 1)


# -- 2. hand-checked records ---------------------------------------------------------------------------


def test_v2_record_with_base64_ted_export_f21_award():
    notice = parse("633448-2021.json")
    record = notice.record
    assert notice.keys == ["pub:633448-2021"] and notice.changes is None
    assert record["id"] == "ted:633448-2021"
    assert record["stage"] == "result"  # F21 NOTICE TYPE AWARD_CONTRACT
    assert record["language"] == "de"
    assert record["title"] == "REZ NORD 45ind AA Neumünster"
    assert record["titles"]["da"] == "Tyskland-Hannover: Uddannelse og undervisning"
    assert record["titles"]["en"] == "Germany-Hanover: Education and training services"
    assert record["buyer"] == {"name": "Bundesagentur für Arbeit, Regionales Einkaufszentrum Nord",
                               "city": "Hannover", "country": "DE"}
    assert record["supplier"] == "DEKRA Akademie; Grone Bildungszentren Schleswig-Holstein"
    assert record["framework_agreement"] is True
    assert record["cpv"] == ["80000000"] and record["nuts"] == ["DE"]
    assert record["published"] == "2021-12-10"
    assert record["value"] is None  # VAL_RANGE_TOTAL 0.01-0.01 is a range
    assert [lot["lot_id"] for lot in record["lots"]] == ["1", "2", "3"]
    assert record["url"] == "file:///corpus/633448-2021.json"


def test_v2_search_response_with_a_defence_award():
    notice = parse("2021-OJS237-623049.json")  # {"took", "total", "results": [record]}
    record = notice.record
    assert record["id"] == "ted:067623-2022"
    assert notice.keys == ["pub:67623-2022"]
    assert record["stage"] == "result"  # CONTRACT_AWARD_DEFENCE (R2.0.8)
    assert record["title"] == "SYS_508/21 Werksinstandhaltung von Systemen Husky BV206D"
    assert record["titles"]["da"] == "Tyskland-Bonn: Reparation og vedligeholdelse af militærkøretøjer"
    assert record["titles"]["en"] == "Germany-Bonn: Repair and maintenance services of military vehicles"
    assert record["buyer"] == {"name": "HIL Heeresinstandsetzungslogistik GmbH", "city": "Bonn", "country": "DE"}
    assert record["supplier"] == "EAFT Emder Anlagen- und Fahrzeugtechnik GmbH"
    assert record["value"] == {"amount": 4500000.0, "currency": "EUR"}  # TOTAL_FINAL_VALUE/VALUE_COST
    assert record["cpv"] == ["50630000"] and record["nuts"] == ["DE"]
    assert record["published"] == "2022-02-07"


def test_v2_record_with_a_pre_2014_corrigendum():
    notice = parse("034224-2016.json")  # OTH_NOT form, TD 2 'Additional information'
    record = notice.record
    assert record["id"] == "ted:034224-2016"
    assert record["stage"] == "change"
    assert notice.changes == "pub:459833-2015"  # NOTICE_DATA/REF_NOTICE 2015/S 251-459833
    assert record["deadline"] == "2016-02-10T23:59:00"  # the corrected time limit (DT_DATE_FOR_SUBMISSION)
    assert record["title"] == "Netherlands-The Hague: Fixed telephony services to Europol"  # ML title, EN original
    assert record["titles"]["da"] == "Nederlandene-Haag: Fastnettelefoni til Europol"
    assert record["buyer"] == {"name": "Europol", "country": "NL", "city": "The Hague"}  # ML_AA_NAMES
    assert record["cpv"][:2] == ["64210000", "64211100"] and len(record["cpv"]) == 6
    assert record["nuts"] == ["NL332"]  # ORIGINAL_NUTS
    assert record["published"] == "2016-02-02"


def test_v2_record_with_plain_xml_content():
    record = parse("045279-2018.json").record  # content is the XML itself, not base64
    assert record["id"] == "ted:045279-2018"
    assert record["stage"] == "result"
    assert record["title"] == "Cross-Cutting Activities — Human Capital"
    assert record["buyer"] == {"name": "Shift2Rail Joint Undertaking", "city": "Brussels", "country": "BE"}
    assert record["cpv"] == ["79000000"]


@pytest.mark.corpus  # a 740 KB notice object: too big to keep a copy in the repo
def test_ted_sws_notice_object():
    (notice,) = parse_ted_api((API / "ted_sws_internal/packaged/632521-2022.json").read_bytes())  # xml_manifestation
    record = notice.record
    assert record["id"] == "ted:632521-2022"
    assert record["stage"] == "result" and record["language"] == "hu"
    assert record["title"].startswith("RSZTOP-4.1.1-16-2017-00001 azonosítószámú projekt keretében")
    assert record["titles"]["da"] == "Ungarn-Budapest: Diverse næringsmidler"
    assert record["titles"]["en"] == "Hungary-Budapest: Miscellaneous food products"
    assert record["buyer"] == {"name": "Szociális és Gyermekvédelmi Főigazgatóság", "city": "Budapest",
                               "country": "HU"}
    assert record["supplier"] == "Káta-Mill Plusz Kft."
    assert record["value"] == {"amount": 1323420000.0, "currency": "HUF"}
    assert record["cpv"][:3] == ["15800000", "15600000", "15131000"] and len(record["cpv"]) == 8
    assert record["nuts"] == ["HU1", "HU2", "HU3"]


def test_v2_record_with_eforms_content_is_handed_to_the_eforms_parser():
    notice = parse("eform-622690-2023.json")
    record = notice.record
    assert "pub:622690-2023" in notice.keys
    assert record["stage"] == "competition"
    assert record["title"] == "Eteläisen Salon liikuntapaikkojen hoidon hankinta"
    assert record["buyer"]["name"] == "Salon kaupunki"
    assert record["cpv"] == ["92610000"]


def test_v2_record_without_content_becomes_a_light_record(validator):
    item = json.loads(load("034224-2016.json"))
    del item["content"]
    notice = parse_ted_api(json.dumps(item).encode())[0]
    record = notice.record
    assert record["id"] == "ted:034224-2016" and notice.keys == ["pub:34224-2016"]
    assert record["stage"] == "change"  # TD 2
    assert notice.changes == "pub:459833-2015"  # RN 2015459833
    assert record["published"] == "2016-02-02"
    assert record["language"] == "en"
    assert record["cpv"][:3] == ["45000000", "45300000", "45310000"]
    assert record["nuts"] == ["NL", "NL3", "NL33", "NL332"]  # OY (NLD, the country, is not a NUTS code)
    assert record["deadline"] == "2017-01-27T00:00:00"
    assert record["url"] == "https://ted.europa.eu/en/notice/-/detail/034224-2016"
    valid(validator, notice)


def test_dispatcher_routes_v2_records_here():
    content = load("633448-2021.json")
    assert detect_format(content) == "ted-api"
    assert parse_document(content)[0].record["id"] == "ted:633448-2021"


# -- v3 search pages ---------------------------------------------------------------------------------

V3_FULL = {
    "publication-number": "00665431-2023",
    "notice-identifier": "5D2D3B10-0B13-4F6B-8A6E-6F2B3C8E1A11",
    "notice-type": "cn-standard",
    "form-type": "competition",
    "notice-title": {
        "dan": "Danmark – Rengøring – Rengøring af Slagelse Kommunes bygninger",
        "eng": "Denmark – Cleaning services – Cleaning of Slagelse Municipality's buildings",
        "deu": "Dänemark – Reinigungsdienste – Reinigung",
        "mul": "ignored, not a language",
    },
    "buyer-name": {"dan": ["Slagelse Kommune"]},
    "buyer-country": ["DNK"],
    "buyer-city": {"dan": ["Slagelse"]},
    "publication-date": "2023-10-13+02:00",
    "deadline-receipt-tender-date-lot": ["2023-11-20+01:00", "2023-11-14+01:00"],
    "deadline-receipt-tender-time-lot": ["12:00:00+01:00", "10:00:00+01:00"],
    "classification-cpv": ["90910000", "90911200", "90910000"],
    "place-of-performance": ["DNK", "DK022"],
    "estimated-value-proc": [12500000],
    "estimated-value-cur-proc": ["DKK"],
    "framework-agreement-lot": ["fa-wo-rc", "none"],
    "reserved-procurement": ["res-ws", "none"],
    "description-proc": {"dan": ["Slagelse Kommune udbyder   rengøring."]},
    "links": {
        "xml": {"MUL": "https://ted.europa.eu/en/notice/665431-2023/xml"},
        "html": {"ENG": "https://ted.europa.eu/en/notice/-/detail/665431-2023",
                 "DAN": "https://ted.europa.eu/da/notice/-/detail/665431-2023"},
        "pdf": {"DAN": "https://ted.europa.eu/da/notice/665431-2023/pdf"},
    },
}
V3_MINIMAL = {
    "publication-number": "7321-2017",
    "links": {"xml": {"MUL": "https://ted.europa.eu/en/notice/7321-2017/xml"}},
}
V3_PAGE = {"notices": [V3_FULL, V3_MINIMAL, {"notice-title": {"eng": "no number: skipped"}}, "junk"],
           "totalNoticeCount": 1234, "iterationNextToken": "tok-2", "timedOut": False}


def test_read_search_page_returns_items_total_and_token():
    notices, total, token = read_search_page(json.dumps(V3_PAGE).encode())
    assert [n.get("publication-number") for n in notices] == ["00665431-2023", "7321-2017", None]
    assert total == 1234 and token == "tok-2"
    last = {"notices": [], "totalNoticeCount": 0, "iterationNextToken": None}
    assert read_search_page(json.dumps(last).encode()) == ([], 0, None)
    assert read_search_page(b'{"notices": []}') == ([], None, None)


def test_v3_item_becomes_a_light_record(validator):
    notices = parse_ted_api(json.dumps(V3_PAGE).encode(), url="https://api.ted.europa.eu/v3/notices/search")
    assert len(notices) == 2  # the item without a publication number and the junk are left out
    full, minimal = notices
    valid(validator, full)
    valid(validator, minimal)
    record = full.record
    assert record["id"] == "ted:665431-2023"
    assert full.keys == ["pub:665431-2023", "uuid:5d2d3b10-0b13-4f6b-8a6e-6f2b3c8e1a11"]
    assert record["stage"] == "competition"
    assert record["title"] == "Danmark – Rengøring – Rengøring af Slagelse Kommunes bygninger"
    assert record["titles"] == {
        "da": "Danmark – Rengøring – Rengøring af Slagelse Kommunes bygninger",
        "en": "Denmark – Cleaning services – Cleaning of Slagelse Municipality's buildings",
        "de": "Dänemark – Reinigungsdienste – Reinigung",
    }
    assert record["buyer"] == {"name": "Slagelse Kommune", "country": "DK", "city": "Slagelse"}
    assert record["published"] == "2023-10-13"
    assert record["deadline"] == "2023-11-14T10:00:00+01:00"  # the earliest lot deadline
    assert record["cpv"] == ["90910000", "90911200"]
    assert record["nuts"] == ["DK022"]
    assert record["value"] == {"amount": 12500000.0, "currency": "DKK"}
    assert record["framework_agreement"] is True and record["reserved"] == ["res-ws"]
    assert record["description"] == "Slagelse Kommune udbyder rengøring."
    assert record["url"] == "https://ted.europa.eu/da/notice/-/detail/665431-2023"  # html DAN first
    assert len(record["lots"]) == 1 and record["lots"][0]["reserved"] == ["res-ws"]

    record = minimal.record
    assert record["id"] == "ted:007321-2017"  # the same id as the notice's TED XML gives
    assert minimal.keys == ["pub:7321-2017"]
    assert record["title"] == "" and record["titles"] == {} and record["buyer"] is None
    assert record["stage"] == "competition" and record["deadline"] is None and record["cpv"] == []
    assert record["url"] == "https://ted.europa.eu/en/notice/7321-2017/xml"  # no html link: the XML


def test_v3_stage_from_notice_type_and_english_title_fallback():
    item = {"publication-number": "123-2024", "notice-type": "can-standard",
            "notice-title": {"fra": "Titre", "eng": "Title"}, "winner-name": {"fra": ["A SARL", "B SA"]},
            "deadline-receipt-tender-date-lot": "2024-03-01T12:00:00Z"}
    record = parse_ted_api(json.dumps(item).encode())[0].record
    assert record["stage"] == "result"
    assert record["title"] == "Title"
    assert record["supplier"] == "A SARL; B SA"
    assert record["deadline"] == "2024-03-01T12:00:00+00:00"
    assert record["url"] == "https://ted.europa.eu/en/notice/-/detail/123-2024"
    pin = {"publication-number": "124-2024", "notice-type": "pin-only"}
    assert parse_ted_api(json.dumps(pin).encode())[0].record["stage"] == "planning"


def test_v3_items_as_json_lines():
    lines = b"\n".join(json.dumps(item).encode() for item in (V3_FULL, V3_MINIMAL))
    assert [n.record["id"] for n in parse_ted_api(lines)] == ["ted:665431-2023", "ted:007321-2017"]


def test_the_spider_emulators_page_shape():
    """The page the TED spider's test server sends (tests/crawler/servers.py)."""
    page = {"notices": [{"publication-number": "436913-2017", "notice-title": {"dan": "Udbud 436913-2017"},
                         "links": {"xml": {"MUL": "http://127.0.0.1:1/notices/436913-2017.xml"},
                                   "html": {"DAN": "http://127.0.0.1:1/da/notice/436913-2017"}}}],
            "totalNoticeCount": 15, "iterationNextToken": None, "timedOut": False}
    notices, total, token = read_search_page(json.dumps(page).encode())
    assert notices[0]["links"]["xml"]["MUL"].endswith("/notices/436913-2017.xml")
    assert (total, token) == (15, None)


# -- 3. hostile and broken input ---------------------------------------------------------------------

XXE_XML = b"""<?xml version="1.0"?><!DOCTYPE TED_EXPORT [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<TED_EXPORT><FORM_SECTION><F02_2014><TITLE><P>&xxe;</P></TITLE></F02_2014></FORM_SECTION></TED_EXPORT>"""


def test_cut_off_v3_page_is_a_parse_error():
    content = json.dumps(V3_PAGE).encode()
    with pytest.raises(ParseError, match="malformed JSON search page"):
        read_search_page(content[: len(content) // 2])
    with pytest.raises(ParseError, match="malformed JSON"):
        parse_ted_api(content[: len(content) // 2])


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"  ", "empty"),
    (b"\xff\xfe\x00binary", "not UTF-8"),
    (b"<html>oops</html>", "malformed JSON"),
    (b"[1, 2, 3]", "not a JSON object"),
    (b'{"message": "Invalid query: unknown field \'foo\'"}', "Invalid query"),
    (b'{"notices": "not a list"}', "no 'notices' list"),
])
def test_read_search_page_refuses_what_is_not_a_search_page(content, message):
    with pytest.raises(ParseError, match=message):
        read_search_page(content)


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\x00\x01\x02", "malformed JSON|not UTF-8"),
    (b'{"hello": "world"}', "not a TED search API record"),
    (b'"just a string"', "not a TED search API"),
    (json.dumps({"ND": "000001-2020", "content": "%%% not base64 %%%"}).encode(), "neither XML nor base64"),
    (json.dumps({"ND": "000001-2020", "content": base64.b64encode(XXE_XML).decode()}).encode(), "DTD"),
    (json.dumps({"ND": "000001-2020", "content": base64.b64encode(b"%PDF-1.4").decode()}).encode(), "not XML"),
    (json.dumps({"ND": "garbage"}).encode(), "publication number"),
    (json.dumps({"publication-number": "not-a-number"}).encode(), "publication-number"),
])
def test_broken_or_hostile_records_are_parse_errors(content, message):
    with pytest.raises(ParseError, match=message) as caught:
        parse_ted_api(content)
    assert "\n" not in str(caught.value) and "root:" not in str(caught.value)


def test_a_bad_record_in_a_v2_response_is_skipped_unless_all_are_bad():
    good = json.loads(load("633448-2021.json"))
    bad = {"ND": "000001-2020", "content": "%%%"}
    response = {"took": 1, "total": 2, "results": [bad, good]}
    assert [n.record["id"] for n in parse_ted_api(json.dumps(response).encode())] == ["ted:633448-2021"]
    with pytest.raises(ParseError, match="neither XML nor base64"):
        parse_ted_api(json.dumps({"took": 1, "total": 1, "results": [bad]}).encode())
