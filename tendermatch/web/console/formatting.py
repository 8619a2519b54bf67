"""How the console writes times, dates, amounts and the store's codes, in Danish (and
English): "mandag 3. marts 2025 kl. 12.00" in Europe/Copenhagen, "1.250.000 kr.".

Month names and the reasons come from ``tendermatch.wording``, the digest's own, so staff
read what the enterprise read; the weekday, the local time and the store's codes are the
console's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ...store.records import MatchFacts
from ...wording.formats import MONTHS
from ...wording.formats import format_amount as worded_amount
from ...wording.reasons import reason_texts

WEEKDAYS = {
    "da": ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}


def parse_moment(value: str | None) -> datetime | date | None:
    """A store timestamp or date: an aware datetime (a naive one is taken as local time by
    the caller), a date for a bare YYYY-MM-DD, None when empty or unreadable."""
    if not value:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_day(value: date, *, language: str, weekday: bool = True) -> str:
    """mandag 3. marts 2025 / Monday 3 March 2025."""
    month = MONTHS[language][value.month - 1]
    day = f"{value.day}. {month} {value.year}" if language == "da" else f"{value.day} {month} {value.year}"
    return f"{WEEKDAYS[language][value.weekday()]} {day}" if weekday else day


def format_time(value: str | None, *, timezone: str, language: str = "da", weekday: bool = True) -> str:
    """A store timestamp as local time: "mandag 3. marts 2025 kl. 12.00"; a date alone
    without the time. A naive timestamp (a notice's deadline as published) is local
    already. Empty for no value; the raw text if it cannot be read."""
    moment = parse_moment(value)
    if moment is None:
        return value or ""
    if not isinstance(moment, datetime):
        return format_day(moment, language=language, weekday=weekday)
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone) if moment.tzinfo else moment.replace(tzinfo=zone)
    day = format_day(local.date(), language=language, weekday=weekday)
    if language == "da":
        return f"{day} kl. {local.hour:02d}.{local.minute:02d}"
    return f"{day} at {local.hour:02d}:{local.minute:02d}"


def format_amount(amount: Any, currency: str | None = "DKK", *, language: str = "da") -> str:
    """1.250.000 kr. / DKK 1,250,000 (the digest's way); empty for none or a value that is no number."""
    try:
        number = float(amount)
    except (TypeError, ValueError):
        return ""
    return worded_amount(number, currency, language=language) if number == number else ""  # NaN: none


def local_today(timezone: str) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()


CODES: dict[str, str] = {
    # kinds, stages, statuses, delivery states, run outcomes, jobs, digest sections, unsubscribe ways
    "tender": "Udbud", "agreement": "Leverandøraftale",
    "planning": "Forhåndsmeddelelse", "competition": "Konkurrence", "result": "Resultat", "change": "Ændring",
    "dir-awa-pre": "Direkte tildeling (varsel)", "cont-modif": "Ændring af kontrakt",
    "active": "Aktiv", "cancelled": "Aflyst", "closed": "Afsluttet",
    "sent": "Sendt", "pending": "Venter", "failed": "Fejlet",
    "ok": "OK", "partial": "Delvist", "interrupted": "Afbrudt", "running": "Kører",
    "crawl": "Indsamling", "match": "Matchning", "digest": "Udsendelse", "ingest": "Indlæsning",
    "reparse": "Genlæsning",
    "open": "Åbne udbud", "agreements": "Leverandøraftaler", "changed": "Ændret siden sidst",
    "one-click": "ét klik i e-mailen", "web page": "afmeldingssiden",
    "new": "ny", "updated": "opdateret", "merged": "slået sammen",
    "staff": "medarbejder", "viewer": "læser",
    "enterprise": "virksomhedsside", "export": "eksport",
}
CODES_EN: dict[str, str] = {
    "tender": "Tender", "agreement": "Supplier agreement", "planning": "Prior information", "competition":
    "Competition", "result": "Result", "change": "Change", "dir-awa-pre": "Direct award (notice)",
    "cont-modif": "Contract modification",
    "active": "Active", "cancelled": "Cancelled", "closed": "Closed", "sent": "Sent", "pending": "Pending",
    "failed": "Failed", "ok": "OK", "partial": "Partial", "interrupted": "Interrupted", "running": "Running",
    "crawl": "Crawl", "match": "Match", "digest": "Digest", "ingest": "Ingest", "reparse": "Reparse",
    "open": "Open tenders", "agreements": "Supplier agreements", "changed": "Changed since last time",
    "one-click": "one click in the e-mail", "web page": "the unsubscribe page", "new": "new", "updated": "updated",
    "merged": "merged", "staff": "staff", "viewer": "viewer", "enterprise": "enterprise page", "export": "export",
}
# A notice's fields as a version's "what changed" names them.
FIELD_NAMES = {
    "deadline": "fristen", "status": "status", "title": "titlen", "value": "værdien", "lots": "delkontrakterne",
    "buyer": "ordregiveren", "cpv": "CPV-koderne", "description": "beskrivelsen", "stage": "fasen",
    "valid_until": "aftalens udløb", "nuts": "udførelsesstedet",
}


def field_names(fields: list[str], *, language: str = "da") -> str:
    """The changed fields in words (Danish), the field's own name where unknown or in English."""
    return ", ".join(FIELD_NAMES.get(name, name) if language == "da" else name for name in fields)


def code_text(code: Any, *, language: str = "da") -> str:
    """A store code (kind, stage, state, outcome, ...) in plain words; the code itself if unknown."""
    if code is None:
        return ""
    table = CODES if language == "da" else CODES_EN
    return table.get(str(code), str(code))


def reasons_for(stored: list[str], facts: MatchFacts | None, *, language: str, prefer_stored: bool) -> list[str]:
    """The reasons to show: ``stored`` (what a digest told) when ``prefer_stored`` and any,
    else worded from ``facts`` in ``language`` by the one wording the digest uses
    (``tendermatch.wording.reasons``), else ``stored``."""
    if prefer_stored and stored:
        return stored
    if facts:
        try:
            return reason_texts(facts, language=language)
        except (KeyError, TypeError, ValueError, AttributeError):  # a stored row of an older shape
            pass
    return stored
