"""RSS 2.0 (and RSS 1.0) and Atom feeds of notices, e.g. a municipality's "udbud" feed.

Parsed with :func:`xmlsafe.parse_xml` only (no DTD, no entities, no network). Each item or
entry becomes one notice keyed by its link; the deadline is read from the description
('Tilbudsfrist: 4. januar 2027 kl. 12:00').

Identity: an item with a link is ``web:<link>``; one without is ``web:<feed>#<guid>``, or
``web:<feed>#<title slug>`` when it has no guid either. Items of one feed that come out
with the same id but say different things are told apart by their content, and an item
equal to an earlier one is reported, not merged, by the rule of ``html.distinct_items``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree

from .common import (
    MAX_DOCUMENT_BYTES,
    ItemProblem,
    ParsedNotice,
    ParseError,
    clean_text,
    cpv_code,
    finish_record,
    iso_date,
    language_code,
    new_record,
    parse_each_named,
    unique,
)
from .html import distinct_items, fragment_text, parse_danish_amount, parse_danish_datetime, slug, ted_keys
from .xmlsafe import local_name, parse_xml

__all__ = ["parse_feed"]

# Submission deadline labels, most specific first ('Frist for spørgsmål' is not one).
_DEADLINES = (
    re.compile(
        r"(?:tilbudsfrist|ansøgningsfrist|frist\s+for\s+(?:afgivelse\s+af\s+|modtagelse\s+af\s+)?"
        r"(?:tilbud|ansøgning(?:er)?|anmodning(?:er)?\s+om\s+(?:deltagelse|prækvalifikation)))\s*:?\s*(.{1,80})",
        re.IGNORECASE,
    ),
    re.compile(r"(?<![a-zæøå])frist\s*:\s*(.{1,80})", re.IGNORECASE),
)
_VALUE = re.compile(
    r"(?:anslået\s+værdi|kontraktværdi|forventet\s+værdi|værdi)\s*:\s*([^\n;|]{1,60})", re.IGNORECASE
)
_CPV_CODE = re.compile(r"(?<![0-9])([0-9]{8})-[0-9](?![0-9])")
_BUYER_WORDS = re.compile(r"kommune|region|styrelse|ministeri|forsyning|universitet|kommunalbestyrelse", re.IGNORECASE)
_EMAIL_NAME = re.compile(r"^\s*\S+@\S+\s*\((.+)\)\s*$")


def parse_feed(content: bytes, *, url: str | None = None, notice_kind: str = "tender",
               problems: list[ItemProblem] | None = None) -> list[ParsedNotice]:
    """One notice per RSS item / Atom entry. An empty feed gives []; a document that is
    not a feed raises ParseError; an item that cannot be read is added to ``problems`` and
    costs only itself."""
    if notice_kind not in ("tender", "agreement"):
        raise ParseError(f"unknown notice kind {notice_kind!r} (expected 'tender' or 'agreement')")
    root = parse_xml(content, max_bytes=MAX_DOCUMENT_BYTES)
    name = local_name(root)
    read: Callable[[etree._Element], dict[str, Any]]
    if name == "rss":
        channel = _child(root, "channel")
        if channel is None:
            raise ParseError("RSS feed without a <channel>")
        items, read = _children(channel, "item"), _rss_item
        language = language_code((_child_text(channel, "language") or "")[:2] or None)
    elif name == "RDF":
        items, read, language = _children(root, "item"), _rss_item, None
    elif name == "feed":
        items, read = _children(root, "entry"), _atom_entry
        lang = root.get("{http://www.w3.org/XML/1998/namespace}lang")
        language = language_code(lang[:2]) if lang else None
    else:
        raise ParseError(f"not an RSS or Atom feed (root element <{name}>)")

    problems = [] if problems is None else problems
    def item_notices(item: etree._Element) -> list[ParsedNotice]:
        notice = _notice(read(item), url=url, kind=notice_kind, language=language)
        return [notice] if notice is not None else []

    named = parse_each_named(((f"item {number}", item) for number, item in enumerate(items, 1)), item_notices,
                             problems)
    return distinct_items(named, problems)


# ---------------------------------------------------------------- XML helpers


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [child for child in element if isinstance(child.tag, str) and local_name(child) == name]


def _child(element: etree._Element, name: str) -> etree._Element | None:
    found = _children(element, name)
    return found[0] if found else None


def _child_text(element: etree._Element, name: str) -> str | None:
    child = _child(element, name)
    if child is None:
        return None
    return clean_text("".join(child.itertext()))


def _raw_text(element: etree._Element | None) -> str | None:
    """The text of a description/summary/content element: escaped HTML as text, inline
    XHTML serialised to HTML."""
    if element is None:
        return None
    if len(element):
        text = "".join(
            etree.tostring(child, method="html", encoding="unicode", with_tail=True) for child in element
        )
        text = (element.text or "") + text
    else:
        text = element.text or ""
    return text if text.strip() else None


def _rss_item(item: etree._Element) -> dict[str, Any]:
    raw_description = _raw_text(_child(item, "description")) or _raw_text(_child(item, "encoded"))
    description = fragment_text(raw_description)
    guid = _child_text(item, "guid")
    link = _child_text(item, "link")
    guid_element = _child(item, "guid")
    permalink = guid_element is not None and guid_element.get("isPermaLink", "true") != "false"
    if not link and permalink and guid and guid.startswith(("http://", "https://")):
        link = guid
    published = None
    pub_date = _child_text(item, "pubDate")
    if pub_date:
        try:
            published = iso_date(parsedate_to_datetime(pub_date).date().isoformat())
        except (TypeError, ValueError, IndexError, OverflowError):
            published = iso_date(pub_date)
    published = published or iso_date(_child_text(item, "date"))
    author = _child_text(item, "creator") or _author_name(_child_text(item, "author"))
    categories = [text for text in (clean_text("".join(c.itertext())) for c in _children(item, "category")) if text]
    return {
        "title": fragment_text(_child_text(item, "title")),
        "link": link,
        "guid": guid,
        "description": description,
        "published": published,
        "author": author,
        "categories": categories,
    }


def _author_name(text: str | None) -> str | None:
    """RSS <author> is an e-mail address, optionally with the name in parentheses."""
    if not text:
        return None
    match = _EMAIL_NAME.match(text)
    if match:
        return clean_text(match.group(1))
    return None if "@" in text else clean_text(text)


def _atom_entry(entry: etree._Element) -> dict[str, Any]:
    link = None
    for candidate in _children(entry, "link"):
        if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
            link = candidate.get("href").strip()
            break
    raw = _raw_text(_child(entry, "summary")) or _raw_text(_child(entry, "content"))
    author = None
    author_element = _child(entry, "author")
    if author_element is not None:
        author = _child_text(author_element, "name")
    categories = [clean_text(c.get("label") or c.get("term")) for c in _children(entry, "category")]
    entry_id = _child_text(entry, "id")
    return {
        "title": fragment_text(_child_text(entry, "title")),
        "link": link,
        "guid": entry_id,
        "description": fragment_text(raw),
        "published": iso_date(_child_text(entry, "published")) or iso_date(_child_text(entry, "updated")),
        "author": author,
        "categories": [c for c in categories if c],
    }


# ---------------------------------------------------------------- mapping


def _notice(fields: dict[str, Any], *, url: str | None, kind: str, language: str | None) -> ParsedNotice | None:
    title = clean_text(fields["title"])
    link = fields["link"]
    if link:
        try:
            link = urljoin(url or "", link.strip())
            if urlsplit(link).scheme.lower() not in ("http", "https", "file", ""):
                link = None
        except ValueError:  # e.g. 'http://[broken' (invalid IPv6 host)
            link = None
    if not title and not link:
        return None
    description = fields["description"]
    if not title:
        title = (description or "")[:150] or link or ""
    if link:
        record_id, key = f"web:{link}", f"url:{link}"
    else:
        guid = fields.get("guid") or slug(title)
        record_id, key = f"web:{url or ''}#{guid}", f"url:{url or ''}#{guid}"
    buyer = fields["author"] or next((c for c in fields["categories"] if _BUYER_WORDS.search(c)), None)
    record = new_record(
        id=record_id,
        kind=kind,
        stage="result" if kind == "agreement" else "competition",
        title=title,
        description=clean_text(description),
        language=language,
        buyer={"name": buyer, "country": None, "city": None} if buyer else None,
        published=fields["published"],
        deadline=_deadline(description),
        value=_value(description),
        cpv=unique([code for code in (cpv_code(m.group(1)) for m in _CPV_CODE.finditer(description or "")) if code]),
        url=link or url,
    )
    keys = unique([key, *ted_keys(title, fields.get("guid"))])
    return ParsedNotice(record=finish_record(record), keys=keys)


def _deadline(description: str | None) -> str | None:
    lines = (description or "").splitlines()
    for pattern in _DEADLINES:
        for line in lines:
            match = pattern.search(line)
            if match:
                parsed = parse_danish_datetime(match.group(1))
                if parsed:
                    return parsed
    return None


def _value(description: str | None) -> dict[str, Any] | None:
    for line in (description or "").splitlines():
        match = _VALUE.search(line)
        if match:
            return parse_danish_amount(match.group(1))
    return None

