"""TED R2.0.8 / R2.0.9 ``TED_EXPORT`` notices (the XML TED published before eForms).

One document holds one notice: coded data (publication number, date, document type,
CPV/NUTS), machine-translated CPV titles in every EU language, and the form itself in
``FORM_SECTION`` (one element per language; the ``CATEGORY="ORIGINAL"`` one is read).

R2.0.9 forms (``F01_2014`` ... ``F25_2014``, ``MOVE``) share one structure
(``CONTRACTING_BODY``, ``OBJECT_CONTRACT/OBJECT_DESCR``, ``LEFTI``, ``PROCEDURE``,
``AWARD_CONTRACT``) and are read precisely. Older R2.0.8 forms (the defence forms
``CONTRACT_DEFENCE``, ``PRIOR_INFORMATION_DEFENCE``, ``CONTRACT_AWARD_DEFENCE`` and the
pre-2014 families) are read best-effort by element name, with the coded data as fallback.

The default namespace differs between schema releases (``ted/R2.0.9.S02/publication``,
``http://publications.europa.eu/resource/schema/ted/R2.0.9/publication``, the R2.0.8 one,
...) and NUTS elements live in yet other namespaces (``n2016:``, ``n2021:``), so element
paths are built per document namespace (cached) and NUTS is matched by local name.

Over 500 lines on purpose: one reading of one schema (R2.0.8 and R2.0.9, every form F01-F25
and T01-T02); its field readers share the form tables above them, and split apart a change
to one form would touch several modules.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from lxml import etree

from .common import (
    ParsedNotice,
    ParseError,
    clean_text,
    country_code,
    cpv_code,
    finish_record,
    has_social_clause,
    iso_date,
    iso_datetime,
    language_code,
    money,
    new_lot,
    new_record,
    publication_key,
    unique,
)
from .xmlsafe import parse_xml

__all__ = ["MAX_SUPPLIERS", "PIN_WITH_CALL_STAGE", "TD_DOCUMENT_TYPE_STAGES", "parse_ted_xml", "ted_id"]

# A prior information notice used as a call for competition (TD 'A'/'M', NOTICE TYPE
# *_CALL_COMPETITION) is the only announcement of that procedure: eForms files it under
# form type 'competition' (subtypes 10-14). Set to "planning" to file every PIN as planning.
PIN_WITH_CALL_STAGE = "competition"

# Award notices of framework agreements can name hundreds of contractors; the supplier
# field keeps the first ones and says how many more there are.
MAX_SUPPLIERS = 25

_RESULT = "result"
_COMPETITION = "competition"
_PLANNING = "planning"

# Stage by form element (local name, without the '_2014' suffix for R2.0.9 forms).
# None = decided by NOTICE/@TYPE or the coded document type.
_FORM_STAGE: dict[str, str | None] = {
    "F01": None, "F02": _COMPETITION, "F03": _RESULT, "F04": None, "F05": _COMPETITION,
    "F06": _RESULT, "F07": _COMPETITION, "F08": _PLANNING, "F12": _COMPETITION, "F13": _RESULT,
    "F09": _COMPETITION, "F10": _COMPETITION, "F11": _COMPETITION, "F14": "change", "F15": "dir-awa-pre",
    "F16": _PLANNING, "F17": _COMPETITION, "F18": _RESULT, "F19": _COMPETITION, "F20": "cont-modif",
    "F21": None, "F22": None,
    "F23": None, "F24": _COMPETITION, "F25": _RESULT, "MOVE": None,
    # R2.0.8 names
    "PRIOR_INFORMATION": None, "CONTRACT": _COMPETITION, "CONTRACT_AWARD": _RESULT,
    "PERIODIC_INDICATIVE_UTILITIES": None, "CONTRACT_UTILITIES": _COMPETITION,
    "CONTRACT_AWARD_UTILITIES": _RESULT, "QUALIFICATION_SYSTEM_UTILITIES": _COMPETITION,
    "BUYER_PROFILE": _PLANNING, "SIMPLIFIED_CONTRACT": _COMPETITION, "CONCESSION": _COMPETITION,
    "CONTRACT_CONCESSIONAIRE": _COMPETITION, "DESIGN_CONTEST": _COMPETITION,
    "RESULT_DESIGN_CONTEST": _RESULT, "ADDITIONAL_INFORMATION_CORRIGENDUM": "change",
    "VOLUNTARY_EX_ANTE_TRANSPARENCY_FAMILY": "dir-awa-pre", "PRIOR_INFORMATION_DEFENCE": _PLANNING,
    "CONTRACT_DEFENCE": _COMPETITION, "CONTRACT_AWARD_DEFENCE": _RESULT,
    "CONTRACT_CONCESSIONAIRE_DEFENCE": _COMPETITION, "PRIOR_INFORMATION_MOVE": _PLANNING,
}
# R2.0.8 FORM attribute ("17") and R2.0.9 FORM attribute ("F17") -> the F-number.
_FORM_NUMBER = re.compile(r"^F?0*([0-9]{1,2})$")

_NOTICE_TYPE_STAGE = {
    "PRI_ONLY": _PLANNING, "PRI_REDUCING_TIME_LIMITS": _PLANNING,
    # F23 (social-services concessions): the PIN is the call for competition (2014/23/EU art. 31(3)).
    "PRI": PIN_WITH_CALL_STAGE,
    "PER_ONLY": _PLANNING, "PER_REDUCING_TIME_LIMITS": _PLANNING,
    "PRI_CALL_COMPETITION": PIN_WITH_CALL_STAGE, "PER_CALL_COMPETITION": PIN_WITH_CALL_STAGE,
    "QSU_ONLY": _COMPETITION, "QSU_CALL_COMPETITION": _COMPETITION,
    "CONTRACT": _COMPETITION, "CONCESSION": _COMPETITION,
    "AWARD_CONTRACT": _RESULT, "CONCESSION_AWARD_CONTRACT": _RESULT, "AWARD_CONCESSION": _RESULT,
}

# CODIF_DATA/TD_DOCUMENT_TYPE/@CODE -> stage; also read by ted_api for the search API's 'TD' field.
TD_DOCUMENT_TYPE_STAGES = {
    "0": _PLANNING, "P": _PLANNING, "8": _PLANNING, "B": _PLANNING, "Q": _PLANNING, "9": _PLANNING,
    "A": PIN_WITH_CALL_STAGE, "M": PIN_WITH_CALL_STAGE,
    "3": _COMPETITION, "4": _COMPETITION, "5": _COMPETITION, "C": _COMPETITION, "D": _COMPETITION,
    "F": _COMPETITION, "H": _COMPETITION, "I": _COMPETITION, "O": _COMPETITION, "Y": _COMPETITION,
    "7": _RESULT, "J": _RESULT, "R": _RESULT, "E": _RESULT,
    "V": "dir-awa-pre", "K": "cont-modif", "1": "change", "2": "change",
}

# A corrigendum's text that says the procedure is cancelled: a cancel word and a procedure
# word in the same text (da, en, de, fr, sv, no, nl, es, it, pt), so that "the site visit is
# cancelled" does not cancel the notice.
_CANCEL_WORD = re.compile(
    r"annuller|aflys|cancel|discontinu|withdrawn|aufgehoben|aufhebung|annul[ée]|avbryt|avbrut|"
    r"ingetrokken|geannuleerd|anulad|annullat|revoca|anulaç",
    re.IGNORECASE,
)
_PROCEDURE_WORD = re.compile(
    r"procedure|procurement|tender|udbud|licitation|ausschreibung|vergabe|verfahren|procédure|marché|"
    r"upphandling|anskaffelse|konkurranse|aanbesteding|licitación|procedimiento|gara|procedura|concurso",
    re.IGNORECASE,
)
_DEADLINE_SECTION = re.compile(r"^\s*(IV\.2\.2|IV\.3\.4)\b")
_DEADLINE_LABEL = re.compile(
    r"receipt of tenders|receipt of requests|modtagelse af (tilbud|anmodning)|frist for modtagelse|"
    r"eingang der angebote|réception des offres|mottagande av anbud|ricevimento delle offerte",
    re.IGNORECASE,
)
_SUPPLEMENTARY_FORMS = {"NOTICE_UUID"}
_RESERVED_WS = {"RESTRICTED_SHELTERED_WORKSHOP", "RESTRICTED_SHELTERED_PROGRAM",
                "RESTRICTED_TO_SHELTERED_WORKSHOPS", "RESTRICTED_TO_SHELTERED_PROGRAM",
                "RESTRICTED_TO_FRAMEWORK"}
_RESERVED_PUB = {"RESERVED_ORGANISATIONS_SERVICE_MISSION"}


_LANGUAGES: dict[str | None, str | None] = {}


def _language(code: str | None) -> str | None:
    """language_code(), memoised (called for two dozen ML_TI_DOC per notice)."""
    try:
        return _LANGUAGES[code]
    except KeyError:
        if len(_LANGUAGES) > 512:
            _LANGUAGES.clear()
        value = _LANGUAGES[code] = language_code(code)
        return value


def ted_id(key: str) -> str:
    """'pub:7321-2017' -> 'ted:007321-2017': TED's own six-digit form (DOC_ID, file names,
    the search API's publication-number), the same whichever way the notice came in."""
    number, _, year = key[4:].partition("-")
    return f"ted:{int(number):06d}-{year}"


def _local(tag: Any) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


class _Tags:
    """Clark-notation tags and paths for one document namespace, built once and cached.

    ``T.TITLE`` -> ``'{ns}TITLE'``; ``T("OBJECT_CONTRACT/TITLE")`` -> ``'{ns}OBJECT_CONTRACT/{ns}TITLE'``.
    """

    def __init__(self, namespace: str | None) -> None:
        self._prefix = f"{{{namespace}}}" if namespace else ""
        self._paths: dict[str, str] = {}

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        tag = self._prefix + name
        setattr(self, name, tag)
        return tag

    def __call__(self, path: str) -> str:
        built = self._paths.get(path)
        if built is None:
            built = "/".join(self._prefix + step for step in path.split("/"))
            self._paths[path] = built
        return built


_TAGS: dict[str | None, _Tags] = {}


def _tags(namespace: str | None) -> _Tags:
    tags = _TAGS.get(namespace)
    if tags is None:
        if len(_TAGS) > 64:  # documents choose their namespace; do not grow without bound
            _TAGS.clear()
        tags = _TAGS[namespace] = _Tags(namespace)
    return tags


def _text(element: etree._Element | None) -> str | None:
    """Text of an element; paragraphs (``P``) joined by a space, white space collapsed."""
    if element is None:
        return None
    tag = element.tag
    paragraphs = list(element.iterchildren(tag[: tag.rfind("}") + 1] + "P"))
    if paragraphs:
        if len(paragraphs) == 1:
            return clean_text("".join(paragraphs[0].itertext()))
        return clean_text(" ".join(["".join(p.itertext()) for p in paragraphs]))
    return clean_text("".join(element.itertext()))


def _money_element(element: etree._Element | None, currency: str | None = None) -> dict[str, Any] | None:
    if element is None:
        return None
    amount = element.get("FMTVAL") or (element.text or "").strip()
    return money(amount, element.get("CURRENCY") or currency)


def _clock(text: str | None) -> str | None:
    """'9:00' -> '09:00' (iso_datetime wants two-digit hours)."""
    if not text:
        return None
    text = text.strip()
    match = re.match(r"^([0-9]):", text)
    return f"0{text}" if match else text


def _compact_date(text: str | None) -> str | None:
    """'20171102' -> '2017-11-02'."""
    if not text:
        return None
    match = re.match(r"\s*([0-9]{4})([0-9]{2})([0-9]{2})", text)
    return iso_date(f"{match.group(1)}-{match.group(2)}-{match.group(3)}") if match else None


def _coded_deadline(text: str | None) -> str | None:
    """DT_DATE_FOR_SUBMISSION '20171124 12:00' (or '20171124') -> ISO date-time."""
    day = _compact_date(text)
    if not day:
        return None
    time = text.strip()[8:].strip() if text else ""
    return iso_datetime(day, _clock(time) or None)


def _suppliers(names: list[str]) -> str | None:
    names = unique([n for n in names if n])
    if not names:
        return None
    if len(names) > MAX_SUPPLIERS:
        return "; ".join(names[:MAX_SUPPLIERS]) + f"; (+{len(names) - MAX_SUPPLIERS} more)"
    return "; ".join(names)


def _pick_form(form_section: etree._Element, original_language: str | None) -> etree._Element:
    forms = [c for c in form_section if isinstance(c.tag, str) and _local(c.tag) not in _SUPPLEMENTARY_FORMS]
    if not forms:
        raise ParseError("FORM_SECTION holds no form")
    originals = [f for f in forms if f.get("CATEGORY") == "ORIGINAL"]
    if original_language:
        for form in originals:
            if (form.get("LG") or "").upper() == original_language.upper():
                return form
    return originals[0] if originals else forms[0]


def _form_key(form: etree._Element) -> str:
    name = _local(form.tag)
    if name.endswith("_2014"):
        return name[:-5]
    return name


def _stage(form: etree._Element, tags: _Tags, td_code: str | None) -> str:
    key = _form_key(form)
    stage = _FORM_STAGE.get(key)
    if stage is None and key not in _FORM_STAGE:
        match = _FORM_NUMBER.match(form.get("FORM") or "")
        if match:
            stage = _FORM_STAGE.get(f"F{int(match.group(1)):02d}")
    if stage is not None:
        return stage
    notice = form.find(tags.NOTICE)
    if notice is not None:
        stage = _NOTICE_TYPE_STAGE.get((notice.get("TYPE") or "").upper())
        if stage:
            return stage
    if td_code and td_code in TD_DOCUMENT_TYPE_STAGES:
        return TD_DOCUMENT_TYPE_STAGES[td_code]
    if key in ("F01", "F04", "PRIOR_INFORMATION", "PERIODIC_INDICATIVE_UTILITIES", "MOVE"):
        return _PLANNING
    return _COMPETITION


class _Coded:
    """What the coded data and translation sections say (fallbacks for the form)."""

    __slots__ = (
        "_tags",
        "_translation",
        "country",
        "cpv",
        "number",
        "nuts",
        "original_language",
        "published",
        "ref_notice",
        "submission",
        "td_code",
        "titles",
        "towns",
    )

    def __init__(self, root: etree._Element, tags: _Tags) -> None:
        self.number = self.published = self.original_language = self.country = None
        self.td_code = self.submission = self.ref_notice = None
        self.cpv: list[str] = []
        self.nuts: list[str] = []
        self.towns: dict[str, str] = {}
        self.titles: dict[str, str] = {}
        coded = root.find(tags.CODED_DATA_SECTION)
        if coded is not None:
            self.published = _compact_date(coded.findtext(tags("REF_OJS/DATE_PUB")))
            notice_data = coded.find(tags.NOTICE_DATA)
            if notice_data is not None:
                for child in notice_data:
                    name = _local(child.tag)
                    if name == "NO_DOC_OJS":
                        self.number = (child.text or "").strip() or None
                    elif name == "LG_ORIG":  # several when the notice has several originals
                        self.original_language = self.original_language or (child.text or "").strip() or None
                    elif name == "ISO_COUNTRY":
                        self.country = child.get("VALUE")
                    elif name == "ORIGINAL_CPV":
                        self.cpv.append(child.get("CODE"))
                    elif name in ("PERFORMANCE_NUTS", "ORIGINAL_NUTS"):  # ORIGINAL_NUTS: before 2016
                        self.nuts.append((child.get("CODE") or "").strip())
                    elif name == "REF_NOTICE":
                        self.ref_notice = child.findtext(tags.NO_DOC_OJS)
                    elif name == "DATE_PUB" and not self.published:
                        self.published = _compact_date(child.text)
            codif = coded.find(tags.CODIF_DATA)
            if codif is not None:
                td = codif.find(tags.TD_DOCUMENT_TYPE)
                self.td_code = td.get("CODE") if td is not None else None
                self.submission = codif.findtext(tags.DT_DATE_FOR_SUBMISSION)
        translation = root.find(tags.TRANSLATION_SECTION)
        self._translation, self._tags = translation, tags
        if translation is not None:
            self._read_translations(translation, tags)

    def _read_translations(self, translation: etree._Element, tags: _Tags) -> None:
        """ML_TITLES (CPV-based title, country, town in every language) in one pass (this
        is a third of all elements of a typical notice)."""
        tag_doc, tag_country, tag_town, tag_p, tag_text = (
            tags.ML_TI_DOC, tags.TI_CY, tags.TI_TOWN, tags.P, tags.TI_TEXT)
        lang = country = town = None
        parts: list[str] = []
        for element in translation.iter(tag_doc, tag_country, tag_town, tag_p, tag_text):
            tag = element.tag
            if tag == tag_p:
                parts.append("".join(element.itertext()) if len(element) else (element.text or ""))
            elif tag == tag_text:
                if not len(element):  # older exports: the text without <P>
                    parts.append(element.text or "")
            elif tag == tag_doc:
                self._add_title(lang, country, town, parts)
                lang, country, town, parts = _language(element.get("LG")), None, None, []
            elif tag == tag_country:
                country = (element.text or "").strip()
            else:
                town = (element.text or "").strip()
        self._add_title(lang, country, town, parts)

    def buyer_name(self, language: str | None) -> str | None:
        """The buyer's name from ML_AA_NAMES (only needed when the form lacks it): in
        ``language`` if given there, else the first."""
        if self._translation is None:
            return None
        names: dict[str, str] = {}
        for element in self._translation.iter(self._tags.AA_NAME):
            value = clean_text(element.text)
            if value:
                names.setdefault(language_code(element.get("LG")) or "", value)
        return names.get(language or "") or next(iter(names.values()), None)

    def _add_title(self, lang: str | None, country: str | None, town: str | None, parts: list[str]) -> None:
        if not lang:
            return
        if town:
            self.towns[lang] = town
        if parts:
            place = "-".join(p for p in (country, town) if p)
            text = clean_text(f"{place}: {' '.join(parts)}" if place else " ".join(parts))
            if text and not text.endswith(":"):
                self.titles[lang] = text


def parse_ted_xml(content: bytes, *, url: str | None = None) -> list[ParsedNotice]:
    """Read one TED_EXPORT document into one notice (a list of one)."""
    root = parse_xml(content)
    if _local(root.tag) != "TED_EXPORT":
        raise ParseError(f"root element is <{_local(root.tag) or root.tag}>, expected <TED_EXPORT>")
    namespace = etree.QName(root).namespace
    tags = _tags(namespace)
    form_section = root.find(tags.FORM_SECTION)
    if form_section is None:
        raise ParseError("TED_EXPORT without FORM_SECTION")
    coded = _Coded(root, tags)
    form = _pick_form(form_section, coded.original_language)

    key = publication_key(coded.number) or publication_key(root.get("DOC_ID"))
    if not key:
        raise ParseError("TED_EXPORT without a publication number (NO_DOC_OJS or DOC_ID)")

    language = language_code(form.get("LG")) or language_code(coded.original_language)
    stage = _stage(form, tags, coded.td_code)
    record = new_record(
        id=ted_id(key),
        stage=stage,
        language=language,
        titles=dict(coded.titles),
        published=coded.published,
        url=url,
    )
    changes: str | None = None

    if form.find(tags.OBJECT_CONTRACT) is not None or _form_key(form).startswith("F"):
        changes = _read_2014_form(form, tags, record)
    else:
        _read_legacy_form(form, tags, record)

    # Fallbacks from the coded data.
    if not record["title"] and language and coded.titles.get(language):
        record["title"] = coded.titles[language]
    if not record["cpv"] and not any(lot["cpv"] for lot in record["lots"]):
        record["cpv"] = unique([c for c in (cpv_code(code) for code in coded.cpv) if c])
        for lot in record["lots"]:
            lot["cpv"] = list(record["cpv"])
    if not record["nuts"] and not any(lot["nuts"] for lot in record["lots"]):
        record["nuts"] = unique([n for n in coded.nuts if n])
        if len(record["lots"]) == 1:
            record["lots"][0]["nuts"] = list(record["nuts"])
    if record["buyer"] is None:
        name = coded.buyer_name(language)
        if name:
            record["buyer"] = {"name": name, "country": country_code(coded.country),
                               "city": clean_text(coded.towns.get(language or ""))}
    if record["deadline"] is None and stage not in (_RESULT, "dir-awa-pre", "cont-modif"):
        record["deadline"] = _coded_deadline(coded.submission)
    if stage == "change" and changes is None:
        changes = publication_key(coded.ref_notice)

    return [ParsedNotice(record=finish_record(record), keys=[key], changes=changes)]


# --------------------------------------------------------------------------- R2.0.9 forms


def _read_2014_form(form: etree._Element, T: _Tags, record: dict[str, Any]) -> str | None:
    """Fill ``record`` from an R2.0.9 form; return the key of the notice it changes (F14).

    Each level is read in one loop over its children (much cheaper with lxml than a
    ``find`` per field).
    """
    object_contracts: list[etree._Element] = []
    awards: list[etree._Element] = []
    body = lefti = procedure = results = None
    for child in form:
        tag = child.tag
        if tag == T.OBJECT_CONTRACT:
            object_contracts.append(child)
        elif tag == T.AWARD_CONTRACT:
            awards.append(child)
        elif tag == T.CONTRACTING_BODY:
            body = child
        elif tag == T.LEFTI:
            lefti = child
        elif tag == T.PROCEDURE:
            procedure = child
        elif tag == T.RESULTS:
            results = child

    if body is not None:
        address = next(body.iterchildren(T.ADDRESS_CONTRACTING_BODY), None)
        if address is not None:
            record["buyer"] = _address(address, T)

    contracts = [_read_object_contract(oc, T) for oc in object_contracts]
    single = sum(len(c["descriptors"]) for c in contracts) == 1
    several = len(contracts) > 1
    for index, contract in enumerate(contracts, 1):
        if index == 1:
            record["title"] = contract["title"] or ""
            record["description"] = contract["description"]
            record["value"] = contract["value"]
        descriptors = contract["descriptors"]
        for position, descr in enumerate(descriptors, 1):
            lot_no, lot = _read_lot(
                descr, T, contract["cpv"],
                contract["title"] if (several or single) else None,
                contract["description"] if (several or single) else None,
            )
            if several:  # F01/F04 with several objects: '2' or '2.1' (object 2, lot 1)
                lot["lot_id"] = f"{index}.{lot_no or position}" if (lot_no or len(descriptors) > 1) else str(index)
            else:
                lot["lot_id"] = lot_no or ("1" if single else (descr.get("ITEM") or str(position)))
            record["lots"].append(lot)
        if several and not descriptors:
            record["lots"].append(new_lot(str(index), title=contract["title"],
                                          description=contract["description"],
                                          cpv=[contract["cpv"]] if contract["cpv"] else [],
                                          value=contract["value"]))
    record["cpv"] = unique([c["cpv"] for c in contracts if c["cpv"]])
    _unique_lot_ids(record["lots"])
    if len(record["lots"]) == 1:  # one lot: what it says holds for the contract
        record["description"] = record["description"] or record["lots"][0]["description"]  # e.g. MOVE
        record["value"] = record["value"] or record["lots"][0]["value"]

    if lefti is not None:
        reserved = []
        for child in lefti:
            name = _local(child.tag)
            if name in _RESERVED_WS:
                reserved.append("res-ws")
            elif name in _RESERVED_PUB:
                reserved.append("res-pub-ser")
            elif name == "PERFORMANCE_CONDITIONS" and has_social_clause(_text(child)):
                _add_social(record, "clause")
        _add_reserved(record, unique(reserved))

    if procedure is not None:
        day = time = None
        for child in procedure:
            tag = child.tag
            if tag == T.FRAMEWORK:
                record["framework_agreement"] = True
            elif tag == T.DATE_RECEIPT_TENDERS:
                day = child.text
            elif tag == T.TIME_RECEIPT_TENDERS:
                time = child.text
        if day:
            record["deadline"] = iso_datetime(day.strip(), _clock(time))

    if awards:
        names: list[str] = []
        awarded = 0
        for award in awards:
            contract = award.find(T.AWARDED_CONTRACT)
            if contract is None:
                continue
            awarded += 1
            for address in contract.iterfind(T("CONTRACTORS/CONTRACTOR/ADDRESS_CONTRACTOR")):
                names.append(_text(address.find(T.OFFICIALNAME)) or "")
            for address in contract.iterfind(T("CONTRACTOR/ADDRESS_CONTRACTOR")):
                names.append(_text(address.find(T.OFFICIALNAME)) or "")
        record["supplier"] = _suppliers(names)
        if awarded == 0 and all(a.find(T.NO_AWARDED_CONTRACT) is not None for a in awards):
            record["status"] = "cancelled"
    if results is not None:  # F13 results of a design contest
        names = [_text(w.find(T.OFFICIALNAME)) or "" for w in results.iter(T.ADDRESS_WINNER)]
        record["supplier"] = record["supplier"] or _suppliers(names)

    if _form_key(form) == "F14":
        return _read_corrigendum(form, T, record)
    return None


def _address(address: etree._Element, T: _Tags) -> dict[str, Any] | None:
    name = city = country = None
    for child in address:
        tag = child.tag
        if tag == T.OFFICIALNAME:
            name = _text(child)
        elif tag == T.TOWN:
            city = clean_text(child.text)
        elif tag == T.COUNTRY:
            country = country_code(child.get("VALUE"))
    return {"name": name, "city": city, "country": country} if name else None


def _read_object_contract(oc: etree._Element, T: _Tags) -> dict[str, Any]:
    title = description = cpv = None
    estimated = total = None
    descriptors = []
    for child in oc:
        tag = child.tag
        if tag == T.OBJECT_DESCR:
            descriptors.append(child)
        elif tag == T.TITLE:
            title = _text(child)
        elif tag == T.SHORT_DESCR:
            description = _text(child)
        elif tag == T.CPV_MAIN:
            code = next(child.iterchildren(T.CPV_CODE), None)
            cpv = cpv_code(code.get("CODE")) if code is not None else None
        elif tag == T.VAL_ESTIMATED_TOTAL:
            estimated = _money_element(child)
        elif tag == T.VAL_TOTAL:
            total = _money_element(child)
    return {"title": title, "description": description, "cpv": cpv, "value": estimated or total,
            "descriptors": descriptors}


def _read_lot(descr: etree._Element, T: _Tags, main_cpv: str | None, fallback_title: str | None,
              fallback_description: str | None) -> tuple[str | None, dict[str, Any]]:
    """(LOT_NO, lot) from an OBJECT_DESCR; the caller sets the lot id."""
    lot_no = title = description = value = None
    cpvs = [main_cpv] if main_cpv else []
    nuts: list[str] = []
    for child in descr:
        tag = child.tag
        if tag == T.CPV_ADDITIONAL:
            for code in child.iterchildren(T.CPV_CODE):
                code = cpv_code(code.get("CODE"))
                if code:
                    cpvs.append(code)
        elif tag == T.TITLE:
            title = _text(child)
        elif tag == T.SHORT_DESCR:
            description = _text(child)
        elif tag == T.LOT_NO:
            lot_no = clean_text(child.text)
        elif tag == T.VAL_OBJECT:
            value = _money_element(child)
        elif isinstance(tag, str) and (tag.endswith("}NUTS") or tag == "NUTS"):
            code = (child.get("CODE") or "").strip()
            if code:
                nuts.append(code)
    return lot_no, new_lot(
        lot_no or "1",
        title=title or fallback_title,
        description=description or fallback_description,
        cpv=unique(cpvs),
        nuts=unique(nuts),
        value=value,
    )


def _unique_lot_ids(lots: list[dict[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for lot in lots:
        lot_id = lot["lot_id"]
        if lot_id in seen:
            seen[lot_id] += 1
            lot["lot_id"] = f"{lot_id}-{seen[lot_id]}"
        else:
            seen[lot_id] = 1


def _add_reserved(record: dict[str, Any], codes: list[str]) -> None:
    if not codes:
        return
    record["reserved"] = unique(record["reserved"] + codes)
    for lot in record["lots"]:
        lot["reserved"] = unique(lot["reserved"] + codes)


def _add_social(record: dict[str, Any], code: str) -> None:
    if code not in record["social"]:
        record["social"].append(code)
    for lot in record["lots"]:
        if code not in lot["social"]:
            lot["social"].append(code)


def _read_corrigendum(form: etree._Element, T: _Tags, record: dict[str, Any]) -> str | None:
    """F14: the changed deadline, a cancellation, and the notice it corrects."""
    changes_key = publication_key(form.findtext(T("COMPLEMENTARY_INFO/NOTICE_NUMBER_OJ")))
    texts: list[str] = []
    deadline = None
    changes = form.find(T.CHANGES)
    if changes is not None:
        for change in changes.iterfind(T.CHANGE):
            section = change.findtext(T("WHERE/SECTION")) or ""
            label = _text(change.find(T("WHERE/LABEL"))) or ""
            new = change.find(T.NEW_VALUE)
            if new is None:
                continue
            new_text = _text(new.find(T.TEXT))
            if new_text:
                texts.append(new_text)
            day = new.findtext(T.DATE)
            if day and deadline is None and (_DEADLINE_SECTION.match(section) or _DEADLINE_LABEL.search(label)):
                deadline = iso_datetime(day, _clock(new.findtext(T.TIME)))
        info = changes.find(T.INFO_ADD)
        if info is not None:
            texts.append(_text(info) or "")
    info = form.find(T("COMPLEMENTARY_INFO/INFO_ADD"))
    if info is not None:
        texts.append(_text(info) or "")
    if deadline:
        record["deadline"] = deadline
    if any(_CANCEL_WORD.search(text) and _PROCEDURE_WORD.search(text) for text in texts if text):
        record["status"] = "cancelled"
    return changes_key


# --------------------------------------------------------------------------- R2.0.8 forms

_LOT_CONTAINERS = ("LOT_PRIOR_INFORMATION", "F17_ANNEX_B", "ANNEX_B", "F02_ANNEX_B", "F05_ANNEX_B",
                   "F16_ANNEX_B", "F01_ANNEX_B", "F04_ANNEX_B", "ANNEX_B_INFORMATION_LOTS")
_DESCRIPTIONS = ("SHORT_CONTRACT_DESCRIPTION", "SHORT_DESCRIPTION_CONTRACT", "SHORT_DESCRIPTION",
                 "TOTAL_QUANTITY_OR_SCOPE")
_TITLES = ("TITLE_CONTRACT", "TITLE_CONTRACT_AWARD", "CONTRACT_TITLE")


def _read_legacy_form(form: etree._Element, T: _Tags, record: dict[str, Any]) -> None:
    """Best effort for R2.0.8 forms: find elements by local name in one pass over the form."""
    index: dict[str, list[etree._Element]] = defaultdict(list)
    lot_elements: set[etree._Element] = set()
    for element in form.iter():
        if isinstance(element.tag, str):
            index[_local(element.tag)].append(element)
    lot_containers = [e for name in _LOT_CONTAINERS for e in index.get(name, [])]
    for container in lot_containers:
        lot_elements.update(container.iter())

    def first(names: tuple[str, ...], outside_lots: bool = True) -> etree._Element | None:
        for name in names:
            for element in index.get(name, []):
                if not outside_lots or element not in lot_elements:
                    return element
        return None

    record["title"] = _text(first(_TITLES)) or ""
    record["description"] = _text(first(_DESCRIPTIONS))

    profile = first(("CA_CE_CONCESSIONAIRE_PROFILE",))
    if profile is not None:
        name = _text(profile.find(T("ORGANISATION/OFFICIALNAME"))) or _text(profile.find(T.OFFICIALNAME))
        if name:
            country = profile.find(T.COUNTRY)
            record["buyer"] = {"name": name, "city": clean_text(profile.findtext(T.TOWN)),
                               "country": country_code(country.get("VALUE") if country is not None else None)}

    main = first(("CPV_MAIN",))
    cpvs: list[str] = []
    if main is not None:
        code_element = main.find(T.CPV_CODE)
        code = cpv_code(code_element.get("CODE")) if code_element is not None else None
        if code:
            cpvs.append(code)
        parent = main.getparent()
        if parent is not None:
            for code_element in parent.iterfind(T("CPV_ADDITIONAL/CPV_CODE")):
                code = cpv_code(code_element.get("CODE"))
                if code:
                    cpvs.append(code)
    record["cpv"] = unique(cpvs)
    record["nuts"] = unique([(e.get("CODE") or "").strip() for e in index.get("NUTS", [])
                             if e not in lot_elements and (e.get("CODE") or "").strip()])

    for container in ("TOTAL_FINAL_VALUE", "TOTAL_ESTIMATED", "NATURE_QUANTITY_SCOPE"):
        for element in index.get(container, []):
            if element in lot_elements:
                continue
            value = _legacy_value(element)
            if value:
                record["value"] = value
                break
        if record["value"]:
            break

    limit = first(("RECEIPT_LIMIT_DATE",))
    if limit is not None:
        year, month, day = (limit.findtext(T.YEAR), limit.findtext(T.MONTH), limit.findtext(T.DAY))
        if year and month and day:
            record["deadline"] = iso_datetime(f"{year.strip()}-{month.strip().zfill(2)}-{day.strip().zfill(2)}",
                                              _clock(limit.findtext(T.TIME)))

    if index.get("F17_FRAMEWORK") or any("FRAMEWORK" in (e.get("VALUE") or "")
                                         for name in ("NOTICE_INVOLVES_DEFENCE", "NOTICE_INVOLVES_DESC_DEFENCE",
                                                      "NOTICE_INVOLVES")
                                         for e in index.get(name, [])):
        record["framework_agreement"] = True
    if any((e.get("VALUE") or "").upper() == "YES" for e in index.get("FRAMEWORK_AGREEMENT", [])):
        record["framework_agreement"] = True

    names = [_text(e) or "" for operator in index.get("ECONOMIC_OPERATOR_NAME_ADDRESS", [])
             for e in operator.iter(T.OFFICIALNAME)]
    record["supplier"] = _suppliers(names)

    for position, container in enumerate(lot_containers, 1):
        lot_cpvs = []
        for code_element in container.iter(T.CPV_CODE):
            code = cpv_code(code_element.get("CODE"))
            if code:
                lot_cpvs.append(code)
        nuts = [(e.get("CODE") or "").strip() for e in container.iter() if _local(e.tag) == "NUTS"]
        values = [v for v in (_legacy_value(e) for e in container.iter(T.NATURE_QUANTITY_SCOPE)) if v]
        record["lots"].append(new_lot(
            clean_text(container.findtext(T.LOT_NUMBER)) or str(position),
            title=_text(container.find(T.LOT_TITLE)),
            description=_text(container.find(T.LOT_DESCRIPTION)),
            cpv=unique(lot_cpvs),
            nuts=unique([n for n in nuts if n]),
            value=values[0] if values else None,
        ))
    _unique_lot_ids(record["lots"])

    reserved = ["res-ws" for name in _RESERVED_WS if index.get(name)]
    _add_reserved(record, unique(reserved))
    for name in ("CONTRACT_RELATING_CONDITIONS", "EXISTENCE_OTHER_PARTICULAR_CONDITIONS"):
        if any(has_social_clause(_text(e)) for e in index.get(name, [])):
            _add_social(record, "clause")
            break


def _legacy_value(element: etree._Element) -> dict[str, Any] | None:
    """A single VALUE_COST under COSTS_RANGE_AND_CURRENCY(_WITH_VAT_RATE) (currency on the parent)."""
    for costs in element.iter():
        if _local(costs.tag) in ("COSTS_RANGE_AND_CURRENCY", "COSTS_RANGE_AND_CURRENCY_WITH_VAT_RATE"):
            for child in costs:
                if _local(child.tag) == "VALUE_COST":
                    return _money_element(child, costs.get("CURRENCY"))
    return None
