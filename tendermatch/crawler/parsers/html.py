"""Listing pages of municipal web sites (tenders, supplier agreements), read with CSS
selectors from the source's configuration.

Selector keys for :func:`parse_listing` (CSS, evaluated inside each row except ``row``):

``row`` (required), ``title`` (required), ``link``, ``deadline``, ``buyer``, ``supplier``,
``valid_until``, ``reference``, ``value``, ``cpv``, ``description``, ``published``.

A detail page is read by :func:`parse_detail` with the same keys prefixed ``detail_``
(``detail_description``, ``detail_cpv``, ``detail_value``, ``detail_deadline``,
``detail_reference``, ``detail_nuts``, ``detail_published``, ``detail_valid_until``,
``detail_supplier``, ``detail_buyer``) and folded into the notice by :func:`merge_detail`.

Row identity (what makes two rows two notices, and a re-crawled row the same one): see
:func:`distinct_items`.

Danish dates and amounts are read by the pure functions :func:`parse_danish_datetime`,
:func:`parse_danish_date` and :func:`parse_danish_amount`.

Over 500 lines on purpose: the listing, its rows, their detail pages and the Danish dates
and amounts are read together by one set of selectors; apart they would pass half-read rows
between modules.
"""

from __future__ import annotations

import copy
import hashlib
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning
from bs4.element import NavigableString, PageElement, PreformattedString, Tag
from bs4.exceptions import ParserRejectedMarkup
from lxml import etree
from soupsieve import SelectorSyntaxError

from .common import (
    MAX_DOCUMENT_BYTES,
    ItemProblem,
    ParsedNotice,
    ParseError,
    clean_text,
    cpv_code,
    finish_record,
    language_code,
    money,
    new_record,
    parse_each_named,
    plausible_year,
    publication_key,
    unique,
)
from .xmlsafe import check_size

__all__ = [
    "detail_url",
    "merge_detail",
    "parse_danish_amount",
    "parse_danish_date",
    "parse_danish_datetime",
    "parse_detail",
    "parse_listing",
    "ted_keys",
    "visible_text",
]

# ---------------------------------------------------------------- Danish dates

_MONTHS = {
    "januar": 1, "jan": 1, "februar": 2, "feb": 2, "marts": 3, "mar": 3, "april": 4, "apr": 4,
    "maj": 5, "juni": 6, "jun": 6, "juli": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "oktober": 10, "okt": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
# A time after a date: 'kl. 12:00', 'kl 12.00', 'klokken 12', ', 12:00', ' 12:00'.
_TIME = (
    r"(?:\s*,?\s*(?:kl\.?|klokken)\s*(?P<h1>[0-9]{1,2})(?:[:.](?P<m1>[0-9]{2}))?"
    r"|\s*,?\s+(?P<h2>[0-9]{1,2})[:.](?P<m2>[0-9]{2}))?"
)
_DATE_PATTERNS = (
    # 2026-12-01, 2026-12-01T12:00, 2026-12-01 12:00
    re.compile(
        r"(?<![0-9])(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
        r"(?:T(?P<h0>[0-9]{2}):(?P<m0>[0-9]{2}))?(?![0-9])" + _TIME
    ),
    # 01-12-2026, 01.12.2026, 1/12/2026, 01.12.26
    re.compile(
        r"(?<![0-9.\-/])(?P<d>[0-9]{1,2})[.\-/](?P<mo>[0-9]{1,2})[.\-/](?P<y>[0-9]{4}|[0-9]{2})(?![0-9])" + _TIME
    ),
    # 1. december 2026, 1 dec. 2026, 1. Dec 2026
    re.compile(
        rf"(?<![0-9])(?P<d>[0-9]{{1,2}})\.?\s*(?P<mon>{_MONTH_NAMES})\.?,?\s+(?P<y>[0-9]{{4}})(?![0-9])" + _TIME,
        re.IGNORECASE,
    ),
)


def _find_date(text: str | None) -> tuple[date, tuple[int, int] | None] | None:
    """The first date (and time, if stated) in Danish text."""
    if not text:
        return None
    text = unicodedata.normalize("NFKC", text)
    best = None
    for pattern in _DATE_PATTERNS:
        match = pattern.search(text)
        if match and (best is None or match.start() < best.start()):
            best = match
    if best is None:
        return None
    parts = best.groupdict()
    year = int(parts["y"])
    if len(parts["y"]) <= 2:  # '31.12.27'; but '0001' is the year 1, not 2001
        year += 2000
    month = _MONTHS[parts["mon"].lower()] if parts.get("mon") else int(parts["mo"])
    try:
        day = date(year, month, int(parts["d"]))
    except ValueError:
        return None
    if not plausible_year(day.year):  # '31.12.9999': a placeholder, not a date
        return None
    clock = None
    for hour_key, minute_key in (("h0", "m0"), ("h1", "m1"), ("h2", "m2")):
        if parts.get(hour_key) is not None:
            hour, minute = int(parts[hour_key]), int(parts.get(minute_key) or 0)
            if hour == 24 and minute == 0:
                hour, minute = 23, 59
            if 0 <= hour <= 23 and 0 <= minute <= 59:
                clock = (hour, minute)
            break
    return day, clock


def parse_danish_datetime(text: str | None) -> str | None:
    """'1. december 2026 kl. 12:00', '01-12-2026 12:00', '01.12.2026', '2026-12-01',
    'Frist: 15. januar 2027' -> '2026-12-01T12:00:00' (no offset: the page states none;
    midnight when no time is given, as ``iso_datetime`` does). None when no full date."""
    found = _find_date(text)
    if found is None:
        return None
    day, clock = found
    hour, minute = clock or (0, 0)
    return datetime(day.year, day.month, day.day, hour, minute).isoformat()


def parse_danish_date(text: str | None) -> str | None:
    """'31.12.2027', '31. december 2027', '2027-12-31' -> '2027-12-31'; None when no full date."""
    found = _find_date(text)
    return found[0].isoformat() if found else None


# ---------------------------------------------------------------- Danish amounts

_NUMBER = re.compile(r"(?<![0-9])([0-9]{1,3}(?:[.\u00a0\u202f ][0-9]{3})+(?:,[0-9]+)?|[0-9]+(?:[.,][0-9]+)?)(?![0-9])")
_MULTIPLIERS = (
    (re.compile(r"^\s*(?:mia\.?|mia\b|milliard(?:er)?\b|mrd\.?)", re.IGNORECASE), 1e9),
    (re.compile(r"^\s*(?:mio\.?|mill?\.|million(?:er)?\b|mil\b)", re.IGNORECASE), 1e6),
    (re.compile(r"^\s*(?:t\.?\s?kr\.?|tkr\.?|tusind\b)", re.IGNORECASE), 1e3),
)
_CURRENCIES = (
    (re.compile(r"\bEUR\b|€|\beuro\b", re.IGNORECASE), "EUR"),
    (re.compile(r"\bSEK\b", re.IGNORECASE), "SEK"),
    (re.compile(r"\bNOK\b", re.IGNORECASE), "NOK"),
    (re.compile(r"\bGBP\b|£", re.IGNORECASE), "GBP"),
)


def _number(token: str) -> float | None:
    token = token.replace("\u00a0", " ").replace("\u202f", " ")
    if "," in token:  # Danish decimal comma: 1.500.000,50 / 2,5
        token = token.replace(".", "").replace(" ", "").replace(",", ".")
    elif " " in token or re.fullmatch(r"[0-9]{1,3}(?:\.[0-9]{3})+", token):
        token = token.replace(".", "").replace(" ", "")  # thousands: 1.500.000 / 1 500 000
    try:
        return float(token)
    except ValueError:
        return None


_MARKER_AFTER = re.compile(
    r"^\s*(?:kr\b|kr\.|dkk\b|,-|mio\b|mio\.|mia\b|mia\.|mill|million|milliard|t\.?\s?kr|tkr|tusind|eur\b|€|euro)",
    re.IGNORECASE,
)
_MARKER_BEFORE = re.compile(r"(?:\bkr\.?|\bdkk|\beur|€)\s*$", re.IGNORECASE)


def parse_danish_amount(text: str | None) -> dict[str, Any] | None:
    """'1.500.000 kr.', 'DKK 2,5 mio.', '750.000 DKK', 'ca. 3 mio. kr. ekskl. moms'
    -> {'amount': 1500000.0, 'currency': 'DKK'}. The first number next to a currency or
    'mio.' wins ('for 4 år: 1.200.000 kr.' -> 1200000), else the first number. Other
    currencies when stated (EUR, €, SEK, NOK, GBP); else DKK. None when no amount."""
    if not text:
        return None
    text = unicodedata.normalize("NFKC", text)
    matches = list(_NUMBER.finditer(text))
    if not matches:
        return None
    match = next(
        (m for m in matches if _MARKER_AFTER.match(text[m.end():]) or _MARKER_BEFORE.search(text[:m.start()])),
        matches[0],
    )
    amount = _number(match.group(1))
    if amount is None:
        return None
    rest = text[match.end():]
    for pattern, factor in _MULTIPLIERS:
        if pattern.match(rest):
            amount *= factor
            break
    currency = next((code for pattern, code in _CURRENCIES if pattern.search(text)), "DKK")
    return money(round(amount, 2), currency)


# ---------------------------------------------------------------- text helpers

_TED_NUMBER = re.compile(
    r"(?<![0-9])(?:[0-9]{4}/S\s*[0-9]{1,3}\s*-\s*[0-9]{6,9}|[0-9]{5,9}-(?:19|20)[0-9]{2})(?![0-9])"
)
_TED_OJS = re.compile(r"(?<![0-9])[0-9]{4}/S\s*[0-9]{1,3}\s*-\s*[0-9]{6,9}(?![0-9])")
_CPV = re.compile(r"(?<![0-9])([0-9]{8})(?:-[0-9])?(?![0-9])")
_NUTS = re.compile(
    r"\b(?:AT|BE|BG|CH|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IS|IT|LI|LT|LU|LV|ME|MK|MT|NL|NO|PL|PT|RO|RS|SE|SI|SK|TR|UK)"
    r"[0-9A-Z]{1,3}\b"
)
_INVISIBLE = ("script", "style", "noscript", "template", "iframe", "object", "svg")
_BLOCKS = ("br", "p", "li", "div", "tr", "h1", "h2", "h3", "h4")


def _visible_parts(element: Tag, *, breaks: bool = False) -> list[str]:
    """The strings a reader sees in ``element``, in order: no script, style or other invisible
    content, no comments, CDATA, doctype or processing instructions; with ``breaks``, a
    "\\n" after each block (paragraph, line break, list item...). One pass with a stack of
    its own, so linear however deep a hostile page or feed nests its tags."""
    parts: list[str] = []
    stack: list[tuple[PageElement, bool]] = [(element, False)]
    while stack:
        node, closing = stack.pop()
        if closing:
            parts.append("\n")
        elif isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):
                parts.append(str(node))
        elif isinstance(node, Tag) and node.name not in _INVISIBLE:
            if breaks and node.name in _BLOCKS:
                stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
    return parts


def visible_text(element: Tag | None) -> str | None:
    """The text a reader sees in ``element`` (script/style content dropped), cleaned, on one line."""
    if element is None:
        return None
    if element.name in _INVISIBLE or any(parent.name in _INVISIBLE for parent in element.parents):
        return None
    return clean_text(" ".join(_visible_parts(element)))


def fragment_text(markup: str | None) -> str | None:
    """The text a reader sees in an HTML fragment given as text (a feed's description is often
    escaped HTML), with a line per block, so that 'Frist: ...' stays on its own line."""
    if not markup:
        return None
    if "<" not in markup and "&" not in markup:
        return clean_text(markup)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(markup, "lxml")
    text = "".join(_visible_parts(soup, breaks=True))
    return "\n".join(line for line in (clean_text(part) for part in text.split("\n")) if line) or None


def ted_keys(*texts: str | None) -> list[str]:
    """'pub:' keys for the TED numbers ('2026/S 201-612345', '612345-2026') in ``texts``."""
    keys = []
    for text in texts:
        for match in _TED_NUMBER.finditer(text or ""):
            key = publication_key(re.sub(r"\s*-\s*", "-", match.group(0)))
            if key:
                keys.append(key)
    return unique(keys)


def _ojs_keys(text: str | None) -> list[str]:
    """'pub:' keys only for the unambiguous OJ S form ('2026/S 201-612345') in free text."""
    keys = [publication_key(re.sub(r"\s*-\s*", "-", m.group(0))) for m in _TED_OJS.finditer(text or "")]
    return unique([key for key in keys if key])


def _cpvs(text: str | None) -> list[str]:
    return unique([code for code in (cpv_code(m.group(1)) for m in _CPV.finditer(text or "")) if code])


def slug(text: str) -> str:
    """``text`` as a URL-safe slug ("Vask af linned, Holbæk" -> "vask-af-linned-holbaek") for the
    ids and keys of rows without a link. Not the matcher's ``fold`` (ä -> ae, Greek and Cyrillic
    transliterated): stored page notices' ids are made from this slug, and another rule would
    give each of them a new id, so a re-crawl would store them all again."""
    text = unicodedata.normalize("NFKD", text.lower().replace("æ", "ae").replace("ø", "oe").replace("å", "aa"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:80] or "notice"


_HTML_START = re.compile(
    rb"<\s*(?:!doctype\s+html|html|head|body|div|table|main|section|article|ul|ol|p|h[1-6]|a|span|form|nav|header)\b",
    re.IGNORECASE,
)


def _soup(content: bytes) -> BeautifulSoup:
    check_size(content, max_bytes=MAX_DOCUMENT_BYTES)
    head = content[:65536].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:5] == b"%PDF-":
        raise ParseError("not an HTML page (a PDF)")
    if head[:1] in (b"{", b"[") or not _HTML_START.search(content[:65536]):
        raise ParseError("not an HTML page")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            soup = BeautifulSoup(content, "lxml")
    # Hostile bytes lxml refuses (bs4 wraps its error in ParserRejectedMarkup), an unknown encoding.
    except (ParserRejectedMarkup, etree.LxmlError, ValueError, LookupError) as error:
        raise ParseError(f"unreadable HTML: {type(error).__name__}") from None
    for element in soup.find_all(list(_INVISIBLE)):
        element.decompose()
    return soup


def _select(scope: Tag, selector: str, key: str, *, one: bool) -> Any:
    try:
        return scope.select_one(selector) if one else scope.select(selector)
    # The source's configured selector, not a bug here: bad syntax, or what soupsieve does not
    # support (a pseudo-element such as ::before).
    except (SelectorSyntaxError, NotImplementedError) as error:
        raise ParseError(f"invalid CSS selector {key}={selector!r}: {str(error).splitlines()[0]}") from None


def _field(scope: Tag, selectors: dict[str, str], key: str) -> Tag | None:
    selector = selectors.get(key)
    if not selector:
        return None
    return _select(scope, selector, key, one=True)


def _field_text(scope: Tag, selectors: dict[str, str], key: str) -> str | None:
    return visible_text(_field(scope, selectors, key))


def _date_source(element: Tag | None) -> str | None:
    """A <time datetime="..."> value or the element's text."""
    if element is None:
        return None
    stamp = element.get("datetime") if element.name == "time" else None
    if not stamp:
        inner = element.find("time", attrs={"datetime": True})
        stamp = inner.get("datetime") if inner is not None else None
    return stamp if isinstance(stamp, str) and stamp.strip() else visible_text(element)


def _href(element: Tag | None) -> str | None:
    if element is None:
        return None
    anchor = element if element.name == "a" and element.get("href") else element.find("a", href=True)
    if anchor is None:
        return None
    href = anchor.get("href")
    if not isinstance(href, str):
        return None
    href = href.strip()
    if not href or href.startswith("#") or href.lower().startswith(("javascript:", "mailto:", "tel:", "data:")):
        return None
    return href


def _absolute(href: str, base: str | None) -> str | None:
    """``href`` resolved against the page URL; None when it is not a usable web link."""
    try:
        absolute = urljoin(base or "", href)
        scheme = urlsplit(absolute).scheme
    except ValueError:  # e.g. 'http://[broken' (invalid IPv6 host)
        return None
    return absolute if scheme in ("http", "https", "file", "") else None


# ---------------------------------------------------------------- listing pages


def parse_listing(
    content: bytes,
    *,
    url: str | None,
    selectors: dict[str, str],
    notice_kind: str = "tender",
    problems: list[ItemProblem] | None = None,
) -> list[ParsedNotice]:
    """One notice per row of a listing page. Raises ParseError when the page is not HTML
    or the ``row`` selector matches nothing (the layout has probably changed); a row that
    cannot be read is added to ``problems`` and costs only itself."""
    # Only bad input is a ParseError (a rejection); a bug here is an error, as in every parser.
    return _parse_listing(content, url=url, selectors=selectors, notice_kind=notice_kind,
                          problems=[] if problems is None else problems)


def _parse_listing(
    content: bytes, *, url: str | None, selectors: dict[str, str], notice_kind: str, problems: list[ItemProblem]
) -> list[ParsedNotice]:
    if not selectors or not selectors.get("row") or not selectors.get("title"):
        raise ParseError("an HTML source needs at least the 'row' and 'title' selectors")
    if notice_kind not in ("tender", "agreement"):
        raise ParseError(f"unknown notice kind {notice_kind!r} (expected 'tender' or 'agreement')")
    soup = _soup(content)
    rows = _select(soup, selectors["row"], "row", one=False)
    if not rows:
        raise ParseError(f"selector row={selectors['row']!r} found no rows: the page layout may have changed")
    language = _page_language(soup)
    def row_notices(row: Tag) -> list[ParsedNotice]:
        notice = _row_notice(row, url=url, selectors=selectors, kind=notice_kind, language=language)
        return [notice] if notice is not None else []

    named = parse_each_named(((f"row {number}", row) for number, row in enumerate(rows, 1)), row_notices, problems)
    return distinct_items(named, problems)


def _page_language(soup: BeautifulSoup) -> str | None:
    html = soup.find("html")
    lang = html.get("lang") if html is not None else None
    if isinstance(lang, str) and lang.strip():
        return language_code(lang.strip().split("-")[0][:2])
    return None


def _row_notice(
    row: Tag, *, url: str | None, selectors: dict[str, str], kind: str, language: str | None
) -> ParsedNotice | None:
    title_element = _field(row, selectors, "title")
    title = visible_text(title_element)
    if not title:
        return None
    href = _href(_field(row, selectors, "link")) if selectors.get("link") else (_href(title_element) or _href(row))
    link = _absolute(href, url) if href else None
    page = url or ""
    notice_url = link or (page or None)
    record_id = f"web:{link}" if link else f"web:{page}#{slug(title)}"
    reference = _field_text(row, selectors, "reference")
    buyer = _field_text(row, selectors, "buyer")
    record = new_record(
        id=record_id,
        kind=kind,
        stage="result" if kind == "agreement" else "competition",
        procedure_id=reference,
        title=title,
        description=_field_text(row, selectors, "description"),
        language=language,
        buyer={"name": buyer, "country": None, "city": None} if buyer else None,
        supplier=_field_text(row, selectors, "supplier"),
        cpv=_cpvs(_field_text(row, selectors, "cpv")),
        value=parse_danish_amount(_field_text(row, selectors, "value")),
        deadline=parse_danish_datetime(_date_source(_field(row, selectors, "deadline"))),
        published=parse_danish_date(_date_source(_field(row, selectors, "published"))),
        valid_until=parse_danish_date(_date_source(_field(row, selectors, "valid_until"))),
        url=notice_url,
    )
    keys = [f"url:{link}" if link else f"url:{page}#{slug(title)}"]
    keys += ted_keys(reference) + _ojs_keys(title)
    return ParsedNotice(record=finish_record(record), keys=unique(keys))


# ---------------------------------------------------------------- row identity
#
# A row with a link is the notice at that link: ``web:<link>``, key ``url:<link>``. A row
# without one is ``web:<page>#<title slug>``, key ``url:<page>#<title slug>``: stable
# across crawls whatever else in the row changes (a moved deadline, a corrected value).
# When several rows of one page come out with the same id (same title and no link, or one
# link shared by several rows), the title alone does not tell them apart, so the other
# cells do: each such row's id (and url: key) gets ``~<its reference>`` when its
# reference is its own within the group (a moved deadline keeps it), else ``~<hash of its
# normalised cells>`` (title, supplier, buyer, reference, dates, value, description,
# CPV, link). Rows equal cell for cell are one notice: the later ones are reported as
# item problems ("row 5: the same as row 2, cell for cell: stored once"), never merged
# silently. (A shared id qualified this way has no detail page: a link shared by several
# rows is not one row's own page.) The same rule holds for feed items (``feed.py``).

_FINGERPRINT_FIELDS = ("title", "supplier", "procedure_id", "deadline", "published", "valid_from", "valid_until",
                       "description", "url")


def _cells(record: Mapping[str, Any]) -> str:
    """What a row says, normalised (case, white space), as one text: rows with the same
    cells are the same row."""
    def norm(value: Any) -> str:
        return " ".join(str(value).casefold().split()) if value not in (None, "", [], {}) else ""

    parts = [norm(record.get(name)) for name in _FINGERPRINT_FIELDS]
    parts.append(norm((record.get("buyer") or {}).get("name")))
    value = record.get("value") or {}
    parts.append(norm(f"{value.get('amount')} {value.get('currency')}" if value else None))
    parts.append(norm(" ".join(record.get("cpv") or [])))
    return "\x1f".join(parts)


def _qualified(notice: ParsedNotice, qualifier: str) -> ParsedNotice:
    """``notice`` under ``<id>~<qualifier>``, its url: key following its id."""
    record = copy.copy(notice.record)
    record["id"] = f"{notice.record['id']}~{qualifier}"
    old_key = f"url:{notice.record['id'].removeprefix('web:')}"
    keys = [f"url:{record['id'].removeprefix('web:')}" if key == old_key else key for key in notice.keys]
    return ParsedNotice(record=record, keys=keys, changes=notice.changes)


def distinct_items(named: list[tuple[str, ParsedNotice]], problems: list[ItemProblem]) -> list[ParsedNotice]:
    """The notices of one document's rows (or feed items), ``named`` ("row 3", notice) in
    page order, with ids that tell apart rows the page tells apart (see "row identity"
    above); a row equal cell for cell to an earlier one is dropped and added to
    ``problems``."""
    groups: dict[str, list[tuple[str, ParsedNotice]]] = {}
    for name, notice in named:
        groups.setdefault(notice.record["id"], []).append((name, notice))
    replaced: dict[int, ParsedNotice | None] = {}  # id(notice) -> its stand-in (None: dropped)
    for members in groups.values():
        if len(members) == 1:
            continue
        first_with: dict[str, str] = {}
        distinct: list[tuple[str, ParsedNotice]] = []
        for name, notice in members:
            cells = _cells(notice.record)
            if cells in first_with:
                replaced[id(notice)] = None
                problems.append(ItemProblem(name, f"the same as {first_with[cells]}, cell for cell: stored once"))
            else:
                first_with[cells] = name
                distinct.append((cells, notice))
        if len(distinct) == 1:
            continue
        references = [slug(notice.record.get("procedure_id") or "") if notice.record.get("procedure_id") else ""
                      for _, notice in distinct]
        uses = Counter(references)
        for (cells, notice), reference in zip(distinct, references, strict=False):
            own_reference = reference and uses[reference] == 1
            qualifier = reference if own_reference else hashlib.sha256(cells.encode()).hexdigest()[:10]
            replaced[id(notice)] = _qualified(notice, qualifier)
    result = []
    for _, notice in named:
        stand_in = replaced.get(id(notice), notice)
        if stand_in is not None:
            result.append(stand_in)
    return result


def detail_url(notice: ParsedNotice) -> str | None:
    """The absolute URL of the row's own page (its link), or None when the row had none."""
    url = notice.record.get("url")
    if url and notice.record.get("id") == f"web:{url}":
        return url
    return None


# ---------------------------------------------------------------- detail pages


def parse_detail(content: bytes, *, url: str | None, selectors: dict[str, str]) -> dict[str, Any]:
    """Fields found on a detail page with the ``detail_*`` selectors; only found ones are
    returned: description, cpv (list), nuts (list), value, deadline, published, valid_until,
    supplier, buyer, procedure_id and keys (TED publication keys from the reference)."""
    return _parse_detail(content, selectors)


def _parse_detail(content: bytes, selectors: dict[str, str]) -> dict[str, Any]:
    soup = _soup(content)
    detail: dict[str, Any] = {}

    def elements(key: str) -> list[Tag]:
        selector = selectors.get(f"detail_{key}")
        return _select(soup, selector, f"detail_{key}", one=False) if selector else []

    def joined(key: str) -> str | None:
        return clean_text(" ".join(t for t in (visible_text(e) for e in elements(key)) if t))

    description = joined("description")
    if description:
        detail["description"] = description
    cpv = _cpvs(joined("cpv"))
    if cpv:
        detail["cpv"] = cpv
    nuts = unique(_NUTS.findall(joined("nuts") or ""))
    if nuts:
        detail["nuts"] = nuts
    value = parse_danish_amount(joined("value"))
    if value:
        detail["value"] = value
    dates = (("deadline", parse_danish_datetime), ("published", parse_danish_date), ("valid_until", parse_danish_date))
    for key, parse in dates:
        found = elements(key)
        parsed = parse(_date_source(found[0])) if found else None
        if parsed:
            detail[key] = parsed
    for key in ("supplier", "buyer"):
        text = joined(key)
        if text:
            detail[key] = text
    reference = joined("reference")
    if reference:
        detail["procedure_id"] = reference
        keys = ted_keys(reference)
        if keys:
            detail["keys"] = keys
    return detail


def merge_detail(notice: ParsedNotice, detail: dict[str, Any]) -> ParsedNotice:
    """A copy of ``notice`` completed with a detail page's fields (the detail page wins
    for description, value and deadline; codes are added), made consistent again."""
    # Worked on as a plain dict until finish_record makes it a consistent record again.
    record = cast(dict[str, Any], copy.deepcopy(notice.record))
    for key in ("description", "value", "deadline", "published", "valid_until", "supplier", "procedure_id"):
        if detail.get(key):
            record[key] = detail[key]
    if detail.get("buyer"):
        record["buyer"] = {"name": detail["buyer"], "country": None, "city": None}
    record["cpv"] = unique(list(record["cpv"]) + list(detail.get("cpv") or []))
    record["nuts"] = unique(list(record["nuts"]) + list(detail.get("nuts") or []))
    record["lots"] = []  # rebuilt from the completed record
    record["social"] = [code for code in record["social"] if code != "clause"]
    keys = unique(list(notice.keys) + list(detail.get("keys") or []))
    return ParsedNotice(record=finish_record(record), keys=keys, changes=notice.changes)


def parse_listing_with_details(
    content: bytes,
    *,
    url: str | None,
    selectors: dict[str, str],
    notice_kind: str = "tender",
    details: dict[str, bytes] | None = None,
    problems: list[ItemProblem] | None = None,
) -> tuple[list[ParsedNotice], list[str]]:
    """A listing page's notices completed from their detail pages ({link: bytes}), and a
    warning for each detail page that could not be read (its row keeps the listing's data).
    A row that cannot be read is added to ``problems``."""
    notices = parse_listing(content, url=url, selectors=selectors, notice_kind=notice_kind, problems=problems)
    warnings: list[str] = []
    completed = []
    for notice in notices:
        link = detail_url(notice)
        if link and details and link in details:
            try:
                notice = merge_detail(notice, parse_detail(details[link], url=link, selectors=selectors))
            except ParseError as error:
                warnings.append(f"{link}: detail page ignored: {error}")
            except Exception as error:  # a bug: the row keeps the listing's data, the run is not ok
                if problems is not None:
                    problems.append(ItemProblem(f"detail page {link}", f"{type(error).__name__}: {error}"[:300],
                                                error=True))
        completed.append(notice)
    return completed, warnings
