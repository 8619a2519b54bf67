"""Dates, amounts and place names as a Danish or English reader writes them: the digest,
the match log and the staff console all print them this way. Pure functions."""

from __future__ import annotations

import csv
from datetime import date, datetime
from functools import lru_cache
from importlib import resources

LANGUAGES = ("da", "en")
_AT = {"da": "kl.", "en": "at"}

MONTHS = {
    "da": ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober",
           "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}


@lru_cache(maxsize=1)
def _nuts_names() -> dict[str, tuple[str, str]]:
    """NUTS code -> (English name, Danish name), from ``data/nuts_all_en_da.csv``."""
    with resources.files("tendermatch.wording").joinpath("data/nuts_all_en_da.csv").open(encoding="utf-8") as file:
        return {row["code"]: (row["label_en"], row["label_da"]) for row in csv.DictReader(file)}


def nuts_name(code: str, *, language: str) -> str:
    """A place of performance by name ("Byen København (DK011)"), or the bare code if unknown."""
    names = _nuts_names().get(code)
    return f"{names[1] if language == 'da' else names[0]} ({code})" if names else code


def format_date(value: date, *, language: str) -> str:
    """24. november 2026 / 24 November 2026."""
    month = MONTHS[language][value.month - 1]
    return f"{value.day}. {month} {value.year}" if language == "da" else f"{value.day} {month} {value.year}"


def format_deadline(value: datetime | date, *, language: str) -> str:
    """A date, with the time of day when it has one (deadlines are usually at noon)."""
    if isinstance(value, datetime):
        day = format_date(value.date(), language=language)
        if (value.hour, value.minute) == (0, 0):
            return day
        clock = f"{value.hour:02d}.{value.minute:02d}" if language == "da" else f"{value.hour:02d}:{value.minute:02d}"
        return f"{day} {_AT[language]} {clock}"
    return format_date(value, language=language)


def format_number(value: float, *, language: str) -> str:
    """1.500.000 (Danish) / 1,500,000 (English), rounded to whole units."""
    text = f"{round(value):,}"
    return text.replace(",", ".") if language == "da" else text


def format_amount(amount: float, currency: str | None, *, language: str) -> str:
    """1.500.000 kr. / DKK 1,500,000; other currencies by their code (1.500.000 EUR / EUR 1,500,000)."""
    number = format_number(amount, language=language)
    currency = (currency or "DKK").upper()
    if language == "da":
        return f"{number} kr." if currency == "DKK" else f"{number} {currency}"
    return f"{currency} {number}"


