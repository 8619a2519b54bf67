"""What goes into one enterprise's weekly digest: pure functions from match-log rows and
notice records to a ``Digest`` of ``DigestItem``s, each already in the reader's language.

Rendering (``render.py``) only lays these out; sending (``send.py``) never looks inside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from ..errors import TendermatchError
from ..store.records import MatchFacts
from ..wording.formats import format_amount, format_date, format_deadline
from ..wording.reasons import note_texts, reason_texts
from . import texts

SECTIONS = ("open", "planning", "agreements", "changed")
# A supplier agreement is news when it ends within this many days: a re-tender is coming.
AGREEMENT_HORIZON_DAYS = 365
MACHINE_TITLE_FORMATS = ("ted-xml", "ted-api")  # TED's `titles` are "Country-City: CPV label", not translations
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# The most of each crawled text a digest shows: one absurd field (a 10 MB title) must not
# crowd out the other notices or push the e-mail over what a relay accepts.
TITLE_CHARS = 500
NAME_CHARS = 200  # buyer, supplier, the enterprise's own name
LOT_CHARS = 300
REASON_CHARS = 300
MAX_REASONS = 12
URL_CHARS = 2000  # a longer link is not shown (a cut link leads nowhere)
_PERIOD = re.compile(r"(\d{4})-W(\d{2})")


class PeriodError(TendermatchError, ValueError):
    """Raised by ``parse_period`` for text that is not an ISO week like 2026-W48."""


@dataclass(frozen=True)
class Recipient:
    """An enterprise as the notifier sees it (the worker builds these from profiles)."""

    profile_id: str
    name: str
    emails: tuple[str, ...]
    language: str = "da"
    max_items: int = 20


@dataclass
class DigestItem:
    """One notice in a digest, every text already cleaned and in the reader's language."""

    notice_id: str
    section: str  # one of SECTIONS
    rank: int | None
    title: str
    subtitle: str | None = None  # TED's own subject line in the reader's language
    buyer: str | None = None
    lot: str | None = None  # the lot that fits, when the notice has several
    value: str | None = None
    deadline: str | None = None
    days_left: str | None = None
    expires: str | None = None
    supplier: str | None = None
    reserved: bool = False
    social: str | None = None  # the badge text, when there is one
    reasons: list[str] = field(default_factory=list)  # why it fits
    notes: list[str] = field(default_factory=list)  # what to know before bidding: never among the reasons
    url: str | None = None
    change: str | None = None  # changed section: what changed
    deadline_iso: str | None = None  # as stored, recorded with the delivery
    status: str | None = None


@dataclass
class Digest:
    """One recipient's digest for one period."""

    recipient: Recipient
    period: str
    week: int
    language: str
    sections: dict[str, list[DigestItem]]
    more: int = 0  # matches beyond max_items, left for next week

    @property
    def items(self) -> list[DigestItem]:
        return [item for name in SECTIONS for item in self.sections.get(name, [])]

    @property
    def new_count(self) -> int:
        return sum(len(self.sections.get(name, [])) for name in SECTIONS if name != "changed")

    @property
    def changed_count(self) -> int:
        return len(self.sections.get("changed", []))

    @property
    def is_empty(self) -> bool:
        return not self.items


def parse_period(text: str) -> tuple[int, int]:
    """'2026-W48' -> (2026, 48)."""
    found = _PERIOD.fullmatch(text.strip())
    if not found:
        raise PeriodError(f"{text!r} is not an ISO week like 2026-W48")
    year, week = int(found[1]), int(found[2])
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise PeriodError(f"{text!r}: {year} has no week {week}") from None
    return year, week


def period_of(day: date) -> str:
    """The ISO week a day falls in: 2026-11-23 -> '2026-W48'."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def clean(text: Any) -> str:
    """Crawled text made safe for one line: control characters and newlines become spaces.
    (HTML escaping is the template's job; this keeps headers and plain text intact.)"""
    return " ".join(_CONTROL.sub(" ", str(text or "")).split())


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, ending in "…"
    (mid-word when the last word alone is longer than half the limit)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    else:
        cut = cut[:limit - 1]
    return cut.rstrip(" ,.;:–-") + "…"


def bounded(text: Any, limit: int) -> str:
    """Crawled text ``clean``-ed and ``shorten``-ed to ``limit`` characters."""
    raw = text if isinstance(text, str) else str(text or "")
    if len(raw) <= limit * 4:
        return shorten(clean(raw), limit)
    # A huge value: only its start is read (cleaning 10 MB to show 500 characters is waste).
    start = clean(raw[:limit * 4])
    return shorten(start, limit) if len(start) > limit else start + "…"


def parse_when(value: str | None, *, timezone: str) -> datetime | date | None:
    """A stored deadline or end date: a date, or a datetime in ``timezone`` when it has a time."""
    if not value:
        return None
    try:
        if len(value) <= 10:
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(timezone))
    return moment


def _day(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


def notice_link(record: dict[str, Any], *, language: str) -> str | None:
    """Where a person reads the notice: its own http(s) URL, else its page on TED when the
    id is a TED publication number; never another scheme (crawled text could hold
    ``javascript:`` or a local ``file:`` path)."""
    url = clean(record.get("url"))
    if url and len(url) <= URL_CHARS and urlparse(url).scheme in ("http", "https") and urlparse(url).netloc:
        return url
    found = re.fullmatch(r"(?:ted|eforms):0*(\d{1,8}-\d{4})", record.get("id", ""))
    if found:
        return f"https://ted.europa.eu/{language}/notice/-/detail/{found[1]}"
    return None


def choose_titles(record: dict[str, Any], *, language: str) -> tuple[str, str | None]:
    """(title, subtitle): the title in the reader's language where the notice carries one
    (Danish or English), else the original; for TED notices, whose translations are TED's
    machine-made subject lines, the original with that line as the subtitle."""
    original = bounded(record.get("title"), TITLE_CHARS) or bounded(record.get("id"), TITLE_CHARS)
    if record.get("language") == language:
        return original, None
    titles = record.get("titles") or {}

    def translation(key: str) -> str:  # only the one or two wanted: TED notices carry 24
        return bounded(titles.get(key), TITLE_CHARS)

    if record.get("format") in MACHINE_TITLE_FORMATS:
        subtitle = translation(language)
        return original, subtitle if subtitle and subtitle != original else None
    other = "en" if language == "da" else "da"
    return translation(language) or translation(other) or original, None


def _lot_of(record: dict[str, Any], lot_id: str | None) -> dict[str, Any] | None:
    for lot in record.get("lots") or []:
        if str(lot.get("lot_id")) == str(lot_id):
            return lot
    return None


def _value_text(record: dict[str, Any], lot: dict[str, Any] | None, *, language: str) -> str | None:
    lots = record.get("lots") or []
    money = (lot or {}).get("value") or (record.get("value") if len(lots) <= 1 else None)
    if not money or money.get("amount") is None:
        return None
    try:
        return format_amount(float(money["amount"]), money.get("currency"), language=language)
    except (TypeError, ValueError):
        return None


def _badges(facts: MatchFacts, *, language: str) -> tuple[bool, str | None]:
    social = facts.get("social") or []
    if "clause" in social:
        badge: str | None = texts.label(language, "badge_social")
    elif social:
        badge = texts.label(language, "badge_social_objective")
    else:
        badge = None
    return bool(facts.get("reserved")), badge


def make_item(record: dict[str, Any], *, section: str, language: str, as_of: date, timezone: str,
              match: dict[str, Any] | None = None) -> DigestItem:
    """A notice as a digest item: titles, buyer, the lot that fits and its value, dates
    with days left, badges, reasons and link (``match`` is its match-log row)."""
    match = match or {}
    facts: MatchFacts = match.get("facts") or MatchFacts()
    title, subtitle = choose_titles(record, language=language)
    lot_id = match.get("lot_id") or (facts.get("lot") or {}).get("lot_id")
    lot = _lot_of(record, lot_id)
    lot_text = None
    if lot is not None and len(record.get("lots") or []) > 1:
        lot_title = bounded(lot.get("title"), LOT_CHARS)
        lot_text = bounded(lot.get("lot_id"), NAME_CHARS) + (f" – {lot_title}" if lot_title else "")
    deadline = parse_when(record.get("deadline"), timezone=timezone)
    expires = parse_when(record.get("valid_until"), timezone=timezone) if record.get("kind") == "agreement" else None
    reserved, social = _badges(facts, language=language)
    return DigestItem(
        notice_id=record["id"], section=section, rank=match.get("rank"), title=title, subtitle=subtitle,
        buyer=bounded((record.get("buyer") or {}).get("name"), NAME_CHARS) or None, lot=lot_text,
        value=_value_text(record, lot, language=language),
        deadline=format_deadline(deadline, language=language) if deadline else None,
        days_left=texts.days_left(_day(deadline), today=as_of, language=language) if deadline else None,
        expires=format_date(_day(expires), language=language) if expires else None,
        supplier=bounded(record.get("supplier"), NAME_CHARS) or None if record.get("kind") == "agreement" else None,
        reserved=reserved, social=social,
        reasons=[bounded(reason, REASON_CHARS) for reason in reason_texts(
            facts, language=language, fallback=match.get("reasons"))[:MAX_REASONS]],
        notes=[bounded(note, REASON_CHARS) for note in note_texts(
            facts, language=language, days_left=(_day(deadline) - as_of).days if deadline else None)[:MAX_REASONS]],
        url=notice_link(record, language=language), deadline_iso=record.get("deadline"),
        status=record.get("status"))


def section_of(record: dict[str, Any], *, as_of: date, timezone: str, check_deadlines: bool = True) -> str | None:
    """Which section a matched notice belongs in on ``as_of``, or None when it is not news
    any more (closed, cancelled, deadline passed) or not yet (an agreement ending in more
    than 12 months, or with no end date)."""
    if record.get("status", "active") != "active":
        return None
    if record.get("kind") == "agreement":
        expires = parse_when(record.get("valid_until"), timezone=timezone)
        if expires is None:
            return None
        days = (_day(expires) - as_of).days
        if days > AGREEMENT_HORIZON_DAYS or (days < 0 and check_deadlines):
            return None
        return "agreements"
    if check_deadlines:
        deadline = parse_when(record.get("deadline"), timezone=timezone)
        if deadline is not None and _day(deadline) < as_of:
            return None
    return "planning" if record.get("stage") == "planning" else "open"


def change_text(change: dict[str, Any], *, language: str, timezone: str) -> str:
    """What changed about a notice told earlier: cancelled, or the deadline moved."""
    if change.get("status") == "cancelled":
        return texts.label(language, "changed_cancelled")
    new = parse_when(change.get("deadline"), timezone=timezone)
    old = parse_when(change.get("told_deadline"), timezone=timezone)
    new_text = format_deadline(new, language=language) if new else "?"
    if old is None:
        return texts.label(language, "changed_deadline_new", new=new_text)
    return texts.label(language, "changed_deadline", old=format_deadline(old, language=language), new=new_text)


def _same_moment(told: str | None, now: str | None, *, timezone: str) -> bool:
    """Whether two stored deadlines are the same time written differently (another
    source's notice may give it with or without the offset): that is not a change."""
    first, second = parse_when(told, timezone=timezone), parse_when(now, timezone=timezone)
    if isinstance(first, datetime) and isinstance(second, datetime):
        return first.replace(tzinfo=None) == second.replace(tzinfo=None)
    return first == second


def build_digest(recipient: Recipient, *, matches: list[dict[str, Any]], records: dict[str, dict[str, Any]],
                 changes: list[dict[str, Any]], period: str, as_of: date, timezone: str = "Europe/Copenhagen",
                 check_deadlines: bool = True) -> Digest:
    """The digest of ``recipient`` for ``period``: its untold ``matches`` (match-log rows,
    best rank first) that are news on ``as_of``, at most ``max_items`` of them, by section;
    and ``changes`` (from ``Store.told_changes``) in a short "changed since last week" section."""
    language = recipient.language if recipient.language in texts.LANGUAGES else "da"
    sections: dict[str, list[DigestItem]] = {name: [] for name in SECTIONS}
    taken = more = 0
    for match in sorted(matches, key=lambda row: (row.get("rank") or 0, row["notice_id"])):
        record = records.get(match["notice_id"])
        if record is None:
            continue
        section = section_of(record, as_of=as_of, timezone=timezone, check_deadlines=check_deadlines)
        if section is None:
            continue
        if taken >= recipient.max_items:
            more += 1
            continue
        sections[section].append(make_item(record, section=section, language=language, as_of=as_of,
                                           timezone=timezone, match=match))
        taken += 1
    for change in changes:
        record = records.get(change["notice_id"])
        if record is None or (change.get("status") != "cancelled" and _same_moment(
                change.get("told_deadline"), change.get("deadline"), timezone=timezone)):
            continue
        item = make_item(record, section="changed", language=language, as_of=as_of, timezone=timezone)
        item.change = change_text(change, language=language, timezone=timezone)
        sections["changed"].append(item)
    _, week = parse_period(period)
    return Digest(recipient=recipient, period=period, week=week, language=language, sections=sections, more=more)
