"""The record every parser returns, and small helpers the parsers share.

A parser is a pure function ``bytes -> list[ParsedNotice]``: no Scrapy, no store, no I/O.
It raises :class:`ParseError` (one line, no file name: the caller adds the file or URL)
when the document as a whole cannot be used.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ...errors import TendermatchError

if TYPE_CHECKING:  # the parsers stay pure: importing them does not load the store
    from ...store.records import NoticeRecord

_Item = TypeVar("_Item")

# Documents larger than this are refused before parsing (a TED notice is < 2 MB; the
# largest eForms SDK example, 100 lots, is about 1 MB).
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024

RESERVED_CODES = ("res-ws", "res-pub-ser")
SOCIAL_OBJECTIVE_CODES = ("opp", "work-cond", "acc-all", "gen-eq", "et-eq", "hum-right", "other")


def too_large(size: int, max_bytes: int) -> str:
    """The one-line reason for refusing a document of ``size`` bytes."""
    return f"document is {size / 2**20:.1f} MB, over the {max_bytes / 2**20:.0f} MB limit"


class ParseError(TendermatchError, ValueError):
    """Raised by a parser when a document cannot be used at all: not well-formed, empty,
    binary, too large, forbidden DTD/entities, wrong root element, or no notice in it.

    The message is one line and names what is wrong, not the file (the caller adds that).
    """

# The eForms stages, one table for every parser that reads eForms codes (eForms XML, and the
# TED search API's 'form-type' and 'notice-type' fields). Form type (BT-03, the
# NoticeTypeCode's listName) -> record stage:
EFORMS_FORM_TYPE_STAGES = {
    "planning": "planning",
    "consultation": "planning",  # E1 pre-market consultation
    "competition": "competition",
    "result": "result",
    "completion": "result",  # E5 contract completion
    "dir-awa-pre": "dir-awa-pre",
    "cont-modif": "cont-modif",
    "change": "change",
}
# Notice type (BT-02) prefix -> stage, for notices whose form type is missing or unknown.
_EFORMS_NOTICE_TYPE_STAGES = (
    ("pin-cfc", "competition"), ("pin-", "planning"), ("pmc", "planning"),
    ("cn-", "competition"), ("qu-sy", "competition"), ("subco", "competition"),
    ("can-modif", "cont-modif"), ("can-", "result"), ("compl", "result"),
    ("veat", "dir-awa-pre"), ("corr", "change"),
)


def load_json(content: bytes, *, name: str = "JSON", lines: bool = True, malformed_hint: str = "") -> Any:
    """A JSON document, or JSON lines (one value per line, returned as a list; not when
    ``lines`` is False), for every parser that reads JSON: a UTF-8 byte-order mark is skipped;
    NaN and Infinity, which are not JSON, are refused, as is nesting too deep to read. Raises
    ParseError naming where the document (``name``: "search page") is broken, with
    ``malformed_hint`` after a syntax error (" (cut off?)")."""
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    try:
        return json.loads(content, parse_constant=refuse_constant)
    except UnicodeDecodeError:
        raise ParseError(f"{name} is not UTF-8") from None
    except RecursionError:  # json's C decoder recurses once per level of nesting
        raise ParseError(f"{name} is nested too deeply to read (hostile or broken)") from None
    except json.JSONDecodeError as error:
        if error.msg != "Extra data" or not lines:
            what = "JSON" if name == "JSON" else f"JSON {name}"
            raise ParseError(f"malformed {what}: {error.msg} at line {error.lineno} column {error.colno}"
                             f"{malformed_hint}") from None
    values = []
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line, parse_constant=refuse_constant))
        except UnicodeDecodeError:
            raise ParseError(f"malformed JSON lines: line {number}: not UTF-8") from None
        except RecursionError:
            raise ParseError(f"malformed JSON lines: line {number}: nested too deeply to read") from None
        except json.JSONDecodeError as error:
            raise ParseError(f"malformed JSON lines: line {number}: {error.msg} at column {error.colno}") from None
    return values


def refuse_constant(name: str) -> Any:
    """``json.loads``'s parse_constant: NaN and Infinity are not JSON."""
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


def eforms_stage(form_type: str | None, notice_type: str | None) -> str | None:
    """The record stage of an eForms notice from its form type (BT-03), else its notice
    type (BT-02); None when neither is known."""
    if form_type in EFORMS_FORM_TYPE_STAGES:
        return EFORMS_FORM_TYPE_STAGES[form_type]
    for prefix, stage in _EFORMS_NOTICE_TYPE_STAGES:
        if (notice_type or "").startswith(prefix):
            return stage
    return None


@dataclass
class ItemProblem:
    """One item of a document (an OCDS release, a search result, a listing row, a feed
    item) that could not be read while the rest of the document could: the pipeline
    records it alone, naming the document and ``item``. ``error`` marks an unexpected
    exception (a bug, which makes the run partial) rather than bad input."""

    item: str
    reason: str
    error: bool = False


def parse_each(items: Iterable[tuple[str, _Item]], parse_item: Callable[[_Item], list[ParsedNotice]],
               problems: list[ItemProblem]) -> list[ParsedNotice]:
    """``parse_item`` on every (name, item), so that one item costs only itself: its
    ParseError (bad input) or any other exception (a bug) becomes an ItemProblem named by
    the item, and the rest goes on. When every item failed on bad input, that is the
    document's ParseError (the first item's reason)."""
    return [notice for _name, notice in parse_each_named(items, parse_item, problems)]


def parse_each_named(items: Iterable[tuple[str, _Item]], parse_item: Callable[[_Item], list[ParsedNotice]],
                     problems: list[ItemProblem]) -> list[tuple[str, ParsedNotice]]:
    """``parse_each``, each notice with the name of the item it came from."""
    notices: list[tuple[str, ParsedNotice]] = []
    failed: list[ItemProblem] = []
    tried = 0
    for name, item in items:
        tried += 1
        try:
            notices.extend((name, notice) for notice in parse_item(item))
        except ParseError as error:
            failed.append(ItemProblem(name, str(error)))
        except RecursionError:
            failed.append(ItemProblem(name, "nested too deeply"))
        except Exception as error:  # a bug on one item must not cost the others
            failed.append(ItemProblem(name, f"{type(error).__name__}: {error}".splitlines()[0][:300], error=True))
    if failed and len(failed) == tried and not any(problem.error for problem in failed):
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise ParseError(f"{failed[0].item}: {failed[0].reason}{more}")
    problems.extend(failed)
    return notices


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

    record: NoticeRecord
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


# Unicode categories never wanted in an identifier: controls (NUL), format characters
# (bidi overrides, zero-width joiners), surrogates (unencodable), private use, unassigned.
_ID_UNWANTED = frozenset(("Cc", "Cf", "Cs", "Co", "Cn"))
MAX_ID_LENGTH = 300


def clean_identifier(text: Any) -> str | None:
    """An id or key as the store keeps it: text, NFC, without control, format (bidi),
    surrogate, private-use or unassigned characters, white space collapsed, at most
    MAX_ID_LENGTH characters; None when nothing is left."""
    if text is None or isinstance(text, bool):
        return None
    text = str(text)
    if not (text.isascii() and text.isprintable()):  # rare: only then look at each character
        text = "".join(ch for ch in text if unicodedata.category(ch) not in _ID_UNWANTED or ch.isspace())
        text = unicodedata.normalize("NFC", text)
    text = " ".join(text.split())[:MAX_ID_LENGTH]
    return text or None


def without_surrogates(text: str) -> str:
    """``text`` without lone surrogates (no UTF-8 store or message can hold them) or NUL;
    the common case returns at once."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "ignore").decode("utf-8")
    return text.replace("\x00", "") if "\x00" in text else text


def clean_text(text: str | None) -> str | None:
    """Collapse white space (including newlines) and strip control characters; None if empty."""
    if text is None:
        return None
    if not text.isprintable():  # rare: only then look at each character (white space stays a gap)
        text = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch)[0] != "C")
    text = " ".join(text.split())
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


# Years a notice's date can plausibly have. Outside them a date is a typing error or a
# placeholder ('31.12.9999' for "no end"), and would overflow date arithmetic (9999-12-31
# at +14:00 is past datetime.max in UTC): it is read as no date at all.
EARLIEST_YEAR = 1900
LATEST_YEAR = 2999


def plausible_year(year: int) -> bool:
    """True for a year a notice's date can have (see EARLIEST_YEAR, LATEST_YEAR)."""
    return EARLIEST_YEAR <= year <= LATEST_YEAR


def iso_date(text: str | None) -> str | None:
    """The date part of an ISO date or date-time ('2026-11-24+01:00' -> '2026-11-24');
    None when there is none or its year is implausible (see EARLIEST_YEAR)."""
    if not text or not isinstance(text, str):
        return None
    match = re.match(r"\s*([0-9]{4}-[0-9]{2}-[0-9]{2})", text)
    if not match:
        return None
    try:
        day = date.fromisoformat(match.group(1))
    except ValueError:
        return None
    return match.group(1) if plausible_year(day.year) else None


def plausible_moment(value: Any) -> str | None:
    """``value`` when it is text that starts with an ISO date of a plausible year (what a
    stored record's date fields must be), else None. Within those years any UTC offset
    that Python accepts converts without overflow."""
    return value if isinstance(value, str) and iso_date(value) else None


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


def finish_record(record: dict[str, Any]) -> NoticeRecord:
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
    if (has_social_clause(record["title"], record["description"], titles.get("da"), titles.get("en"))
            and "clause" not in record["social"]):
        record["social"].append("clause")
    record["cpv"] = unique(record["cpv"] + [c for lot in record["lots"] for c in lot["cpv"]])
    record["nuts"] = unique(record["nuts"] + [n for lot in record["lots"] for n in lot.get("nuts", [])])
    record["reserved"] = [c for c in RESERVED_CODES
                          if c in record["reserved"] or any(c in lot["reserved"] for lot in record["lots"])]
    record["social"] = unique(record["social"] + [s for lot in record["lots"] for s in lot["social"]])
    if not record["title"]:
        record["title"] = next((t for t in record["titles"].values() if t), "") or ""
    return cast("NoticeRecord", record)  # every schema key present and consistent: a notice record
