"""TED search API JSON.

Three shapes reach this parser:

- **Search API v3 pages** (``POST https://api.ted.europa.eu/v3/notices/search``):
  ``{"notices": [...], "totalNoticeCount": N, "iterationNextToken": "..."}``. Each item
  carries the requested fields, named by the TED "fields" vocabulary: ``publication-number``
  ("665431-2023"), ``notice-title`` ({"dan": "...", "eng": "..."}), ``buyer-name``
  ({"dan": ["..."]}), ``publication-date`` ("2023-10-13+02:00"),
  ``deadline-receipt-tender-date-lot`` (["2023-11-14+02:00"]), ``classification-cpv``,
  ``links`` ({"xml": {"MUL": url}, "html": {"DAN": url, ...}}) and so on. An item becomes a
  *light* record: whatever fields were requested, every missing one left empty. The spider
  does not use these records; it reads pages with :func:`read_search_page` and fetches each
  notice's XML.
- **v2-style records** (the search API before v3, and the TED-SWS test data): ``ND``
  (number), ``PD`` (date), ``TI``, ``OC``/``PC`` (CPV), ``RC`` (NUTS), ``TD`` (document type),
  and ``content``: the notice XML, base64 or plain. The XML is decoded and handed to
  :func:`parse_ted_xml` (``TED_EXPORT``) or :func:`parse_eforms` (eForms UBL). A v2 search
  response wraps records as ``{"took": .., "total": .., "results": [...]}``.
- **TED-SWS ``Notice`` objects** (``ted_id``, ``xml_manifestation.object_data`` = the XML,
  ``normalised_metadata``): the XML is parsed the same way.

A record without usable XML falls back to a light record from its metadata.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from datetime import UTC, datetime
from typing import Any

from .common import (
    ALPHA3_COUNTRIES,
    EFORMS_FORM_TYPE_STAGES,
    MAX_DOCUMENT_BYTES,
    RESERVED_CODES,
    SOCIAL_OBJECTIVE_CODES,
    ItemProblem,
    ParsedNotice,
    ParseError,
    clean_text,
    country_code,
    cpv_code,
    eforms_stage,
    finish_record,
    iso_date,
    iso_datetime,
    language_code,
    load_json,
    money,
    new_record,
    parse_each,
    publication_key,
    unique,
)
from .eforms import parse_eforms
from .ted_xml import TD_DOCUMENT_TYPE_STAGES, parse_ted_xml, ted_id

__all__ = ["parse_ted_api", "read_search_page", "v3_record"]

SCHEMA_STAGES = ("planning", "competition", "result", "dir-awa-pre", "cont-modif", "change")
# Preferred languages for a light record's title, description and names (v3 keys).
PREFERRED_LANGUAGES = ("dan", "eng")
TED_NOTICE_PAGE = "https://ted.europa.eu/en/notice/-/detail/{number}"

_NUTS = re.compile(r"^[A-Z]{2}[0-9A-Z]{0,3}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DTD = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


# --------------------------------------------------------------------------- entry points


def read_search_page(content: bytes) -> tuple[list[dict[str, Any]], int | None, str | None]:
    """One v3 search page: (notice items, totalNoticeCount, iterationNextToken).

    Raises ParseError for a page that is not JSON (e.g. cut off mid-stream) or has no
    ``notices`` list; an API error object names its message.
    """
    if not content or not content.strip():
        raise ParseError("empty search page")
    if len(content) > MAX_DOCUMENT_BYTES:
        raise ParseError(f"search page is {len(content) / 1e6:.1f} MB, over the limit")
    # A page cut off mid-stream reads as malformed JSON: the message says what it may be.
    data = load_json(content, name="search page", lines=False, malformed_hint=" (cut off?)")
    if not isinstance(data, dict):
        raise ParseError("search page is not a JSON object")
    notices = data.get("notices")
    if not isinstance(notices, list):
        message = data.get("message") or data.get("error") or data.get("errors")
        detail = f": {(clean_text(str(message)) or '')[:200]}" if message else ""
        raise ParseError(f"not a TED search API v3 page (no 'notices' list){detail}")
    total = data.get("totalNoticeCount")
    if isinstance(total, bool) or not isinstance(total, (int, float)) or not math.isfinite(total):
        total = None
    token = data.get("iterationNextToken")
    token = token if isinstance(token, str) and token else None
    return [n for n in notices if isinstance(n, dict)], (int(total) if total is not None else None), token


def parse_ted_api(content: bytes, *, url: str | None = None,
                  problems: list[ItemProblem] | None = None) -> list[ParsedNotice]:
    """Parse a TED search API JSON document (see the module docstring) into notices. A
    result that cannot be read is added to ``problems`` and costs only itself."""
    problems = [] if problems is None else problems
    data = _load(content)
    if isinstance(data, dict) and isinstance(data.get("notices"), list):  # v3 page
        def v3_notices(item: Any) -> list[ParsedNotice]:
            notice = v3_record(item) if isinstance(item, dict) else None
            return [notice] if notice is not None else []

        return parse_each(((f"result {number}", item) for number, item in enumerate(data["notices"], 1)),
                          v3_notices, problems)
    if isinstance(data, dict) and isinstance(data.get("results"), list):  # v2 search response
        return _many(data["results"], url, problems)
    if isinstance(data, list):
        return _many(data, url, problems)
    if isinstance(data, dict):
        return _one(data, url)
    raise ParseError("JSON is not a TED search API response or record")


# --------------------------------------------------------------------------- documents


def _load(content: bytes) -> Any:
    if not content or not content.strip():
        raise ParseError("empty document")
    if len(content) > MAX_DOCUMENT_BYTES:
        raise ParseError(f"document is {len(content) / 1e6:.1f} MB, over the {MAX_DOCUMENT_BYTES / 1e6:.0f} MB limit")
    return load_json(content)


def _many(items: list[Any], url: str | None, problems: list[ItemProblem]) -> list[ParsedNotice]:
    """Several records: a bad one costs only itself (see ``parse_each``)."""
    return parse_each(((f"record {number}", item) for number, item in enumerate(items, 1) if isinstance(item, dict)),
                      lambda item: _one(item, url), problems)


def _one(item: dict[str, Any], url: str | None) -> list[ParsedNotice]:
    if "publication-number" in item:
        notice = v3_record(item)
        if notice is None:
            raise ParseError("TED search API notice without a usable publication-number")
        return [notice]
    if "xml_manifestation" in item or "ted_id" in item:
        return _sws_notice(item, url)
    if "ND" in item or "content" in item:
        return _v2_record(item, url)
    raise ParseError("JSON object is not a TED search API record (no 'notices', 'publication-number', "
                     "'ND'/'content' or TED-SWS 'xml_manifestation')")


def _xml_bytes(value: Any, what: str) -> bytes:
    """A record's XML, given as text or as base64."""
    if isinstance(value, dict):  # {"object_data": ...} or similar wrappers
        value = value.get("object_data") or value.get("content")
    if not isinstance(value, str) or not value.strip():
        raise ParseError(f"{what} is empty")
    text = value.lstrip("\ufeff \t\r\n")
    if text.startswith("<"):
        return text.encode("utf-8")
    compact = "".join(text.split())
    if len(compact) > MAX_DOCUMENT_BYTES * 4 // 3 + 4:
        raise ParseError(f"{what} is over the {MAX_DOCUMENT_BYTES / 1e6:.0f} MB limit")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError(f"{what} is neither XML nor base64") from None


def _parse_embedded_xml(xml: bytes, url: str | None) -> list[ParsedNotice]:
    from . import detect_format  # the package is initialised by then; lazy to avoid a cycle

    if _DTD.search(xml[:65536]):  # refused here whichever parser the content would go to
        raise ParseError("XML with a DTD or entity declarations is not accepted (entities are off)")
    kind = detect_format(xml)
    if kind == "ted-xml":
        return parse_ted_xml(xml, url=url)
    if kind == "eforms":
        return parse_eforms(xml, url=url)
    raise ParseError(f"record content is {kind}, not a TED_EXPORT or eForms notice")


def _v2_record(item: dict[str, Any], url: str | None) -> list[ParsedNotice]:
    content = item.get("content")
    if content:
        return _parse_embedded_xml(_xml_bytes(content, "record content"), url)
    return [_v2_light_record(item, url)]


def _sws_notice(item: dict[str, Any], url: str | None) -> list[ParsedNotice]:
    manifestation = item.get("xml_manifestation")
    xml = manifestation.get("object_data") if isinstance(manifestation, dict) else None
    if xml:
        return _parse_embedded_xml(_xml_bytes(xml, "xml_manifestation"), url)
    metadata = item.get("original_metadata")
    if isinstance(metadata, dict) and metadata.get("ND"):
        return [_v2_light_record(metadata, url)]
    normalised = item.get("normalised_metadata")
    if isinstance(normalised, dict) and normalised.get("notice_publication_number"):
        return [_sws_light_record(normalised, url)]
    raise ParseError("TED-SWS notice without XML or metadata")


# --------------------------------------------------------------------------- light records


def v3_record(item: dict[str, Any]) -> ParsedNotice | None:
    """A light record from one v3 search item; None without a publication number."""
    number = _first(item.get("publication-number"))
    key = publication_key(number)
    if not key:
        return None
    titles = _by_language(item.get("notice-title"))
    title = clean_text(_pick(item.get("notice-title"))) or ""
    record = new_record(
        id=ted_id(key),
        stage=_v3_stage(item),
        title=title,
        titles=titles,
        description=clean_text(_pick(item.get("description-proc")) or _pick(item.get("description-lot"))),
        procedure_id=_first(item.get("procedure-identifier")),
        notice_version=_first(item.get("notice-version")),
        language=language_code(_first(item.get("language-original") or item.get("official-language"))),
        published=iso_date(_first(item.get("publication-date"))),
        deadline=_v3_deadline(item),
        url=_v3_url(item, number),
    )
    name = clean_text(_pick(item.get("buyer-name") or item.get("organisation-name-buyer")))
    if name:
        record["buyer"] = {"name": name,
                           "country": country_code(_first(item.get("buyer-country"))),
                           "city": clean_text(_pick(item.get("buyer-city")))}
    record["supplier"] = _names(item.get("winner-name") or item.get("organisation-name-tenderer"))
    record["cpv"] = unique([c for c in (cpv_code(v) for v in _flat(item.get("classification-cpv"))) if c])
    record["nuts"] = unique([code for code in (str(v).strip().upper() for v in _flat(
        item.get("place-of-performance") or item.get("place-of-performance-subdiv-lot")))
        if _NUTS.match(code) and code not in ALPHA3_COUNTRIES])
    record["value"] = (_money(item.get("estimated-value-proc"), item.get("estimated-value-cur-proc"))
                       or _money(item.get("total-value"), item.get("total-value-cur"))
                       or _money(item.get("estimated-value-lot"), item.get("estimated-value-cur-lot")))
    record["framework_agreement"] = any(
        str(v).strip().lower() not in ("", "none", "false", "no")
        for field in ("framework-agreement-lot", "framework-agreement-proc")
        for v in _flat(item.get(field)))
    codes = {str(v).strip().lower() for field in ("reserved-procurement", "reserved-participation",
                                                   "BT-71-Lot", "BT-71-Part") for v in _flat(item.get(field))}
    record["reserved"] = [c for c in RESERVED_CODES if c in codes]
    social = {str(v).strip().lower() for field in ("social-objective", "social-objective-lot", "BT-775-Lot")
              for v in _flat(item.get(field))}
    record["social"] = [c for c in SOCIAL_OBJECTIVE_CODES if c in social]
    keys = [key]
    notice_id = _first(item.get("notice-identifier"))
    if notice_id and _UUID.match(notice_id):
        keys.append(f"uuid:{notice_id.lower()}")
    return ParsedNotice(record=finish_record(record), keys=keys, changes=None)


def _v3_stage(item: dict[str, Any]) -> str:
    form_type = (_first(item.get("form-type")) or "").strip().lower()
    if form_type in SCHEMA_STAGES:
        return form_type
    notice_type = (_first(item.get("notice-type")) or "").strip().lower()
    stage = eforms_stage(form_type, notice_type)
    if stage is not None:
        return stage
    td = _first(item.get("TD") or item.get("document-type"))
    return TD_DOCUMENT_TYPE_STAGES.get(str(td).strip().upper(), "competition") if td else "competition"


def _v3_deadline(item: dict[str, Any]) -> str | None:
    """The earliest lot deadline: tenders, else requests to participate; a time is paired
    with its date only when both lists line up."""
    for date_field, time_field in (("deadline-receipt-tender-date-lot", "deadline-receipt-tender-time-lot"),
                                   ("deadline-receipt-request-date-lot", "deadline-receipt-request-time-lot"),
                                   ("deadline-date-lot", "deadline-time-lot"),
                                   ("deadline-receipt-request", None), ("deadline", None)):
        days = [str(v) for v in _flat(item.get(date_field))]
        times = [str(v) for v in _flat(item.get(time_field))] if time_field else []
        values = []
        for index, day in enumerate(days):
            time = times[index] if len(times) == len(days) else None
            value = _iso(day, time)
            if value:
                values.append(value)
        if values:
            return min(values, key=_instant)
    return None


def _iso(day: str, time: str | None = None) -> str | None:
    """iso_datetime() for a date ('2023-11-14+01:00') and time, or for one date-time string
    ('2023-11-14T12:00:00+01:00', which iso_datetime takes as a date)."""
    day = day.strip()
    if len(day) > 10 and day[10] in "Tt ":
        return iso_datetime(day[:10] + day[19:], day[11:])
    return iso_datetime(day, time)


def _instant(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _v3_url(item: dict[str, Any], number: str | None) -> str | None:
    links: dict[str, Any] = item["links"] if isinstance(item.get("links"), dict) else {}
    html: dict[str, Any] = links["html"] if isinstance(links.get("html"), dict) else {}
    for language in ("DAN", "ENG"):
        if isinstance(html.get(language), str) and html[language]:
            return html[language]
    for value in html.values():
        if isinstance(value, str) and value:
            return value
    xml: dict[str, Any] = links["xml"] if isinstance(links.get("xml"), dict) else {}
    if isinstance(xml.get("MUL"), str) and xml["MUL"]:
        return xml["MUL"]
    for value in xml.values():
        if isinstance(value, str) and value:
            return value
    return TED_NOTICE_PAGE.format(number=number.strip()) if number else None


def _v2_light_record(item: dict[str, Any], url: str | None) -> ParsedNotice:
    """A record from v2 metadata alone (no XML): number, date, title, CPV, NUTS, type."""
    key = publication_key(_first(item.get("ND")))
    if not key:
        raise ParseError("TED record without a usable ND (publication number)")
    title_field = item.get("TI")
    titles = _by_language(title_field) if isinstance(title_field, dict) else {}
    language = language_code(_first(item.get("OL")))
    title = (titles.get(language or "") if titles else None) or _pick(title_field) or ""
    record = new_record(
        id=ted_id(key),
        stage=TD_DOCUMENT_TYPE_STAGES.get(str(_first(item.get("TD")) or "").strip().upper(), "competition"),
        title=clean_text(title) or "",
        titles=titles,
        language=language,
        published=iso_date(_first(item.get("PD"))),
        url=url or TED_NOTICE_PAGE.format(number=_first(item.get("ND"))),
    )
    deadlines = [d for d in (iso_datetime(str(v)) for v in _flat(item.get("DT"))) if d]
    if deadlines and record["stage"] in ("competition", "planning", "change"):
        record["deadline"] = min(deadlines)
    record["cpv"] = unique([c for c in (cpv_code(str(v)) for v in _flat(item.get("OC") or item.get("PC"))) if c])
    record["nuts"] = unique([str(v).strip() for v in _flat(item.get("OY") or item.get("RC"))
                             if _NUTS.match(str(v).strip()) and str(v).strip() not in ALPHA3_COUNTRIES])
    name = clean_text(_pick(item.get("AU")))
    if name:
        record["buyer"] = {"name": name, "country": country_code(_first(item.get("CY"))), "city": None}
    changes = None
    if record["stage"] == "change":
        reference = _first(item.get("RN"))  # e.g. 2015459833 = notice 459833-2015
        if reference and re.fullmatch(r"[0-9]{5,}", str(reference)):
            changes = publication_key(f"{str(reference)[4:]}-{str(reference)[:4]}")
    return ParsedNotice(record=finish_record(record), keys=[key], changes=changes)


def _sws_light_record(meta: dict[str, Any], url: str | None) -> ParsedNotice:
    key = publication_key(str(meta["notice_publication_number"]))
    if not key:
        raise ParseError("TED-SWS notice without a usable publication number")
    titles = {}
    for pair in meta.get("title") or []:
        if isinstance(pair, (list, tuple)) and len(pair) == 2 and language_code(str(pair[1])):
            text = clean_text(str(pair[0]))
            if text:
                titles[language_code(str(pair[1]))] = text
    language = language_code(str(meta.get("original_language") or "").rsplit("/", 1)[-1])
    record = new_record(id=ted_id(key), titles=titles, language=language,
                        title=titles.get(language or "", ""),
                        published=iso_date(meta.get("publication_date")),
                        deadline=_iso(str(meta.get("deadline_for_submission") or "")),
                        url=url or TED_NOTICE_PAGE.format(number=meta["notice_publication_number"]))
    form_type = str(meta.get("form_type") or "").rsplit("/", 1)[-1]
    record["stage"] = form_type if form_type in SCHEMA_STAGES else EFORMS_FORM_TYPE_STAGES.get(form_type, "competition")
    names = [clean_text(str(n[0] if isinstance(n, (list, tuple)) else n)) for n in meta.get("name_of_buyer") or []]
    if names and names[0]:
        record["buyer"] = {"name": names[0], "city": None,
                           "country": country_code(str(meta.get("country_of_buyer") or "").rsplit("/", 1)[-1])}
    return ParsedNotice(record=finish_record(record), keys=[key], changes=None)


# --------------------------------------------------------------------------- JSON values


def _flat(value: Any) -> list[Any]:
    """Every scalar in a value (lists and {language: ...} dicts flattened), None dropped."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _flat(item)]
    if isinstance(value, dict):
        return [v for item in value.values() for v in _flat(item)]
    return [value]


def _first(value: Any) -> str | None:
    for item in _flat(value):
        text = str(item).strip()
        if text:
            return text
    return None


def _pick(value: Any) -> str | None:
    """Text in the preferred language (dan, eng, then any) of a {language: text} value."""
    if isinstance(value, dict):
        lowered = {str(k).lower(): v for k, v in value.items()}
        for language in (*PREFERRED_LANGUAGES, "da", "en"):
            text = _joined(lowered.get(language))
            if text:
                return text
        for item in value.values():
            text = _joined(item)
            if text:
                return text
        return None
    return _joined(value)


def _joined(value: Any) -> str | None:
    parts = [str(v).strip() for v in _flat(value) if str(v).strip()]
    return "; ".join(unique(parts)) if parts else None


def _by_language(value: Any) -> dict[str, str]:
    titles: dict[str, str] = {}
    if isinstance(value, dict):
        for language, text in value.items():
            code = language_code(str(language))
            text = clean_text(_joined(text))
            if code and text:
                titles.setdefault(code, text)
    return titles


def _names(value: Any) -> str | None:
    if isinstance(value, dict):
        return clean_text(_pick(value))
    return clean_text(_joined(value))


def _money(amount: Any, currency: Any) -> dict[str, Any] | None:
    amount, currency = _first(amount), _first(currency)
    return money(amount, currency) if amount and currency else None

