"""The record every parser returns, and small helpers the parsers share.

A parser is a pure function ``bytes -> list[ParsedNotice]``: no Scrapy, no store, no I/O.
It raises :class:`ParseError` (one line, no file name: the caller adds the file or URL)
when the document as a whole cannot be used.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

# Documents larger than this are refused before parsing (a TED notice is < 2 MB; the
# largest eForms SDK example, 100 lots, is about 1 MB).
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024

RESERVED_CODES = ("res-ws", "res-pub-ser")
SOCIAL_OBJECTIVE_CODES = ("opp", "work-cond", "acc-all", "gen-eq", "et-eq", "hum-right", "other")


def too_large(size: int, max_bytes: int) -> str:
    """The one-line reason for refusing a document of ``size`` bytes."""
    return f"document is {size / 2**20:.1f} MB, over the {max_bytes / 2**20:.0f} MB limit"


class ParseError(ValueError):
    """Raised by a parser when a document cannot be used at all: not well-formed, empty,
    binary, too large, forbidden DTD/entities, wrong root element, or no notice in it.

    The message is one line and names what is wrong, not the file (the caller adds that).
    """


@dataclass
class ParsedNotice:
    """One notice as a parser read it from one document.

    ``record`` holds the fields of ``notice.schema.json`` except ``sources`` (the pipeline
    adds the crawler source). ``keys`` are identifiers used for de-duplication across
    documents and sources, each prefixed by its kind:

    - ``pub:<number>-<year>``: OJ S / TED publication number without leading zeros
      (``pub:665431-2023``); the same for eForms, TED XML and the TED search API.
    - ``uuid:<uuid>``: eForms notice identifier (BT-701), what change notices refer to.
    - ``ocid:<ocid>``: OCDS contracting process id.
    - ``url:<url>``: a web page (HTML listing rows, feed items).

    ``changes`` is the key of the earlier notice this document changes or cancels
    (eForms BT-758, TED F14 reference), else ``None``.
    """

    record: dict[str, Any]
    keys: list[str] = field(default_factory=list)
    changes: str | None = None


def new_record(**fields: Any) -> dict[str, Any]:
    """A notice record with every schema key present and sensible empty values."""
    record: dict[str, Any] = {
        "id": None,
        "kind": "tender",
        "stage": "competition",
        "procedure_id": None,
        "notice_version": None,
        "title": "",
        "titles": {},
        "description": None,
        "language": None,
        "buyer": None,
        "supplier": None,
        "cpv": [],
        "nuts": [],
        "value": None,
        "deadline": None,
        "published": None,
        "valid_from": None,
        "valid_until": None,
        "url": None,
        "reserved": [],
        "social": [],
        "framework_agreement": False,
        "status": "active",
        "lots": [],
    }
    record.update(fields)
    return record


def new_lot(lot_id: str = "1", **fields: Any) -> dict[str, Any]:
    """A lot with every schema key present."""
    lot: dict[str, Any] = {
        "lot_id": lot_id,
        "title": None,
        "description": None,
        "cpv": [],
        "nuts": [],
        "value": None,
        "reserved": [],
        "social": [],
    }
    lot.update(fields)
    return lot


def clean_text(text: str | None) -> str | None:
    """Collapse white space (including newlines) and strip control characters; None if empty."""
    if text is None:
        return None
    text = " ".join(text.split())
    if not text.isprintable():  # rare: only then look at each character
        text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    return text or None


def cpv_code(code: object) -> str | None:
    """'45000000-7' or ' 45000000 ' -> '45000000'; a JSON number 3000000 -> '03000000';
    anything that is not 8 digits -> None."""
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code < 10**8:
        return f"{code:08d}"
    if not code or not isinstance(code, str):
        return None
    digits = code.strip().split("-")[0].strip()
    return digits if re.fullmatch(r"[0-9]{8}", digits) else None


def unique(items: list[str]) -> list[str]:
    """Keep the first of each item, in order."""
    seen: dict[str, None] = {}
    for item in items:
        if item and item not in seen:
            seen[item] = None
    return list(seen)


def publication_key(number: str | None) -> str | None:
    """'00665431-2023', '665431-2023', '2023/S 123-665431' -> 'pub:665431-2023'."""
    if not number:
        return None
    number = number.strip()
    match = re.fullmatch(r"0*([0-9]+)[-_]([0-9]{4})", number)
    if match:
        return f"pub:{int(match.group(1))}-{match.group(2)}"
    match = re.fullmatch(r"([0-9]{4})/S\s*[0-9]+-0*([0-9]+)", number)
    if match:
        return f"pub:{int(match.group(2))}-{match.group(1)}"
    return None


# Languages as eForms/TED write them (ISO 639-2/B, upper case) -> ISO 639-1.
_LANGUAGES = {
    "BUL": "bg", "CES": "cs", "DAN": "da", "DEU": "de", "ELL": "el", "ENG": "en",
    "EST": "et", "FIN": "fi", "FRA": "fr", "GLE": "ga", "HRV": "hr", "HUN": "hu",
    "ITA": "it", "LAV": "lv", "LIT": "lt", "MLT": "mt", "NLD": "nl", "POL": "pl",
    "POR": "pt", "RON": "ro", "SLK": "sk", "SLV": "sl", "SPA": "es", "SWE": "sv",
    "NOR": "no", "NOB": "nb", "NNO": "nn", "ISL": "is",
}


def language_code(code: str | None) -> str | None:
    """'DAN' / 'DA' / 'da' -> 'da'; unknown -> None."""
    if not code:
        return None
    code = code.strip()
    if len(code) == 2 and code.isalpha():
        return code.lower()
    return _LANGUAGES.get(code.upper())


def money(amount: Any, currency: str | None) -> dict[str, Any] | None:
    """{'amount': float, 'currency': 'DKK'} or None when either part is missing or bad."""
    if amount is None or not currency:
        return None
    try:
        value = float(str(amount).strip().replace(" ", ""))
    except ValueError:
        return None
    currency = currency.strip().upper()
    if not math.isfinite(value) or not re.fullmatch(r"[A-Z]{3}", currency) or value < 0:
        return None
    return {"amount": value, "currency": currency}


def iso_date(text: str | None) -> str | None:
    """The date part of an ISO date or date-time ('2026-11-24+01:00' -> '2026-11-24')."""
    if not text:
        return None
    match = re.match(r"\s*([0-9]{4}-[0-9]{2}-[0-9]{2})", text)
    if not match:
        return None
    try:
        date.fromisoformat(match.group(1))
    except ValueError:
        return None
    return match.group(1)


def iso_datetime(day: str | None, time: str | None = None) -> str | None:
    """Combine an eForms/TED date ('2026-11-24+01:00') and time ('12:00:00+01:00') into
    ISO 8601 with offset when known ('2026-11-24T12:00:00+01:00')."""
    plain_day = iso_date(day)
    if not plain_day:
        return None
    offset = ""
    if day:
        match = re.search(r"(Z|[+-][0-9]{2}:[0-9]{2})\s*$", day.strip()[10:])
        if match:
            offset = match.group(1)
    clock = "00:00:00"
    if time:
        match = re.match(r"\s*([0-9]{1,2})[:.]([0-9]{2})(?::([0-9]{2}))?\s*(Z|[+-][0-9]{2}:[0-9]{2})?", time)
        if match:
            clock = f"{int(match.group(1)):02d}:{match.group(2)}:{match.group(3) or '00'}"
            offset = match.group(4) or offset
    value = f"{plain_day}T{clock}{'+00:00' if offset == 'Z' else offset}"
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return None
    return value


# ISO 3166 alpha-3 (how v3 and eForms name countries) -> alpha-2 (what TED XML uses).
ALPHA3_COUNTRIES = {
    "AUT": "AT", "BEL": "BE", "BGR": "BG", "HRV": "HR", "CYP": "CY", "CZE": "CZ", "DNK": "DK",
    "EST": "EE", "FIN": "FI", "FRA": "FR", "DEU": "DE", "GRC": "GR", "HUN": "HU", "IRL": "IE",
    "ITA": "IT", "LVA": "LV", "LTU": "LT", "LUX": "LU", "MLT": "MT", "NLD": "NL", "POL": "PL",
    "PRT": "PT", "ROU": "RO", "SVK": "SK", "SVN": "SI", "ESP": "ES", "SWE": "SE", "ISL": "IS",
    "LIE": "LI", "NOR": "NO", "CHE": "CH", "GBR": "GB", "MKD": "MK", "SRB": "RS", "MNE": "ME",
    "ALB": "AL", "TUR": "TR", "UKR": "UA", "MDA": "MD", "BIH": "BA", "XKX": "XK", "GRL": "GL",
    "FRO": "FO", "USA": "US", "CAN": "CA",
}


def country_code(code: str | None) -> str | None:
    """ISO 3166 alpha-2 for a country as notices write it: 'DNK' / 'DK' / 'UK' / 'EL' -> 'DK', 'GB', 'GR'."""
    if not code or not code.strip():
        return None
    code = code.strip().upper()
    if len(code) == 3:
        return ALPHA3_COUNTRIES.get(code, code)
    return {"UK": "GB", "EL": "GR"}.get(code, code)


# Phrases that state a social clause (Danish, English, Norwegian and Swedish): apprentices,
# trainees, employment of disadvantaged or unemployed people. Matched on lower-cased text.
_SOCIAL_CLAUSE = re.compile(
    r"social(?:e|t)?\s+klausul|social\s+clause|uddannelsesklausul|arbejdsklausul"
    r"|praktikant|lærling|elevplads|apprentice|trainee"
    r"|beskæftigelse\s+af\s+(?:udsatte|ledige|personer|borgere)|udsatte\s+ledige"
    r"|disadvantaged\s+(?:people|persons|workers|groups)|long[- ]term\s+unemployed"
    r"|sheltered\s+employment|socialøkonomisk"
    r"|lærlingeklausul|lærlinger|sosiale\s+hensyn|sociala\s+hänsyn",
)  # all lower case, searched in lower-cased text: far faster than re.IGNORECASE


# Every phrase of _SOCIAL_CLAUSE contains one of these: a plain substring test rules out
# most texts far faster than the regular expression.
_SOCIAL_STEMS = ("klausul", "clause", "praktikant", "lærling", "elevplads", "apprentice", "trainee", "beskæftigelse",
                 "udsatte", "disadvantaged", "unemployed", "sheltered", "socialøkonomisk", "hensyn", "hänsyn")


def has_social_clause(*texts: str | None) -> bool:
    """True when any text states a social clause (see ``_SOCIAL_CLAUSE``)."""
    joined = "\n".join(text for text in texts if text).lower()  # one search, not one per text
    return any(stem in joined for stem in _SOCIAL_STEMS) and _SOCIAL_CLAUSE.search(joined) is not None


def finish_record(record: dict[str, Any]) -> dict[str, Any]:
    """Make a parsed record consistent: at least one lot; notice-level cpv, nuts, reserved
    and social are unions over the lots; 'clause' added where the text states a social clause.
    """
    if not record["lots"]:
        record["lots"] = [new_lot("1", title=record["title"] or None, description=record["description"],
                                  cpv=list(record["cpv"]), nuts=list(record["nuts"]), value=record["value"],
                                  reserved=list(record["reserved"]), social=list(record["social"]))]
    for lot in record["lots"]:
        if has_social_clause(lot.get("title"), lot.get("description")) and "clause" not in lot["social"]:
            lot["social"].append("clause")
    # The original text and its Danish/English versions: TED's titles in every other
    # language are machine-made from the CPV code and never state a clause.
    titles = record["titles"]
    if has_social_clause(record["title"], record["description"], titles.get("da"), titles.get("en")):
        if "clause" not in record["social"]:
            record["social"].append("clause")
    record["cpv"] = unique(record["cpv"] + [c for lot in record["lots"] for c in lot["cpv"]])
    record["nuts"] = unique(record["nuts"] + [n for lot in record["lots"] for n in lot.get("nuts", [])])
    record["reserved"] = [c for c in RESERVED_CODES
                          if c in record["reserved"] or any(c in lot["reserved"] for lot in record["lots"])]
    record["social"] = unique(record["social"] + [s for lot in record["lots"] for s in lot["social"]])
    if not record["title"]:
        record["title"] = next((t for t in record["titles"].values() if t), "") or ""
    return record
