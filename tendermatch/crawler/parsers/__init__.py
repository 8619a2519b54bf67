"""Pure parsers: bytes in, notice records out. No Scrapy and no store here.

``parse_document`` detects the format from the content and dispatches:

| format     | what                                              | module     |
|------------|---------------------------------------------------|------------|
| eforms     | eForms UBL notices (every notice family)          | eforms     |
| ted-xml    | TED R2.0.8 / R2.0.9 ``TED_EXPORT``                | ted_xml    |
| ted-api    | TED search API JSON (v3 search pages, v2 records) | ted_api    |
| ocds       | OCDS releases, records, packages, JSON lines      | ocds       |
| feed       | RSS 2.0 / Atom feeds of notices                   | feed       |
| html       | a listing page, with selectors from the source    | html       |
"""

from __future__ import annotations

import re

from .common import MAX_DOCUMENT_BYTES, ItemProblem, ParsedNotice, ParseError, load_json
from .xmlsafe import check_size

__all__ = ["FORMATS", "ItemProblem", "ParseError", "ParsedNotice", "detect_format", "parse_document"]

FORMATS = ("eforms", "ted-xml", "ted-api", "ocds", "feed", "html")

_EFORMS_ROOTS = {"ContractNotice", "PriorInformationNotice", "ContractAwardNotice",
                 "BusinessRegistrationInformationNotice"}
_FIRST_TAG = re.compile(rb"<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")


def _first_element_name(content: bytes) -> str | None:
    """Local name of the first element, skipping the XML declaration, comments and PIs."""
    position = 0
    head = content  # not a prefix: a notice may open with a comment of any length
    while True:
        start = head.find(b"<", position)
        if start < 0:
            return None
        if head.startswith(b"<?", start):
            position = head.find(b"?>", start) + 2
        elif head.startswith(b"<!--", start):
            end = head.find(b"-->", start)
            if end < 0:
                return None
            position = end + 3
        elif head.startswith(b"<!", start):
            return "!DOCTYPE"
        else:
            match = _FIRST_TAG.match(head, start + 1 - 1)
            return match.group(2).decode("ascii", "replace") if match else None
        if position <= 1:
            return None


def detect_format(content: bytes) -> str:
    """Name the format of ``content`` (one of FORMATS) or raise ParseError."""
    check_size(content, max_bytes=max(len(content), 1))
    if content[:2] in (b"\xff\xfe", b"\xfe\xff"):
        # UTF-16 with its byte-order mark (lxml and json read it): look at its text as UTF-8.
        content = content.decode("utf-16", "ignore").encode("utf-8")
    text_start = content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if text_start in (b"{", b"["):
        return _detect_json(content)
    if text_start != b"<":
        raise ParseError("not XML, JSON or HTML (unrecognised content)")
    name = _first_element_name(content)
    if name is None:
        raise ParseError("malformed XML: no root element")
    if name in _EFORMS_ROOTS:
        return "eforms"
    if name == "TED_EXPORT":
        return "ted-xml"
    if name in ("rss", "feed", "RDF"):
        return "feed"
    if name.lower() in ("html", "!doctype") and re.search(rb"<html", content[:4096], re.IGNORECASE):
        return "html"
    if name == "!DOCTYPE":
        return "eforms"  # let the XML parser refuse the DTD with its own message
    raise ParseError(f"unknown root element <{name}> (expected an eForms notice, TED_EXPORT, RSS/Atom or HTML)")


def _detect_json(content: bytes) -> str:
    data = load_json(content)
    sample = data[0] if isinstance(data, list) and data else data
    if not isinstance(sample, dict):
        raise ParseError("JSON is not an object or a list of objects")
    if ("notices" in sample or "publication-number" in sample or "ND" in sample
            or "xml_manifestation" in sample or "ted_id" in sample
            or ("results" in sample and "total" in sample)):
        return "ted-api"
    if any(key in sample for key in ("releases", "records", "ocid")):
        return "ocds"
    raise ParseError("JSON is neither a TED search API response nor OCDS"
                     " (no 'notices', 'releases', 'records' or 'ocid')")


def parse_document(
    content: bytes,
    *,
    url: str | None = None,
    format: str | None = None,
    html_selectors: dict[str, str] | None = None,
    notice_kind: str = "tender",
    html_details: dict[str, bytes] | None = None,
    warnings: list[str] | None = None,
    problems: list[ItemProblem] | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> list[ParsedNotice]:
    """Parse one document of any supported format into notices.

    ``format`` skips detection; ``html_selectors``, ``notice_kind`` and ``html_details``
    (the rows' detail pages, {link: bytes}) come from an html source's config and crawl;
    problems that cost some fields, not the document, are appended to ``warnings``; items
    of a many-notice document (releases, results, rows, feed items) that cannot be read
    are appended to ``problems`` and cost only themselves. Raises ParseError when the
    document as a whole cannot be used.
    """
    try:
        return _parse_document(content, url=url, format=format, html_selectors=html_selectors,
                               notice_kind=notice_kind, html_details=html_details, warnings=warnings,
                               problems=[] if problems is None else problems, max_bytes=max_bytes)
    except RecursionError:  # JSON or markup nested deeper than any notice is: bad input
        raise ParseError("nested too deeply to read") from None


def _parse_document(content: bytes, *, url: str | None, format: str | None, html_selectors: dict[str, str] | None,
                    notice_kind: str, html_details: dict[str, bytes] | None, warnings: list[str] | None,
                    problems: list[ItemProblem], max_bytes: int) -> list[ParsedNotice]:
    check_size(content, max_bytes=max_bytes)
    format = format or detect_format(content)
    if format == "eforms":
        from .eforms import parse_eforms

        return parse_eforms(content, url=url)
    if format == "ted-xml":
        from .ted_xml import parse_ted_xml

        return parse_ted_xml(content, url=url)
    if format == "ted-api":
        from .ted_api import parse_ted_api

        return parse_ted_api(content, url=url, problems=problems)
    if format == "ocds":
        from .ocds import parse_ocds

        return parse_ocds(content, url=url, problems=problems)
    if format == "feed":
        from .feed import parse_feed

        return parse_feed(content, url=url, notice_kind=notice_kind, problems=problems)
    if format == "html":
        if not html_selectors:
            raise ParseError("an HTML page can only be read with the selectors of an html source")
        from .html import parse_listing_with_details

        notices, detail_warnings = parse_listing_with_details(content, url=url, selectors=html_selectors,
                                                              notice_kind=notice_kind, details=html_details,
                                                              problems=problems)
        if warnings is not None:
            warnings.extend(detail_warnings)
        return notices
    raise ParseError(f"unknown format {format!r}")
