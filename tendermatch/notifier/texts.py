"""The fixed texts of a digest, in Danish and English: greetings, headings, labels. Dates,
amounts and the reasons a notice matched are worded in ``tendermatch.wording``, the one
place the digest, the match log and the console share. Pure functions; no jinja2 and no
store here.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ..wording.formats import LANGUAGES

__all__ = ["LABELS", "LANGUAGES", "days_left", "label"]

LABELS: dict[str, dict[str, str]] = {
    "da": {
        "greeting": "Hej {name}",
        "intro_one": "Her er ét nyt udbud, I kan byde på, fundet i uge {week}.",
        "intro_many": "Her er {count} nye udbud, I kan byde på, fundet i uge {week}.",
        "intro_none": "Vi fandt ingen nye udbud til jer i uge {week}. Vi holder øje og skriver igen næste uge.",
        "intro_changed": "Der er ændringer i udbud, vi tidligere har skrevet til jer om.",
        "section_open": "Åbne udbud",
        "section_planning": "Forhåndsmeddelelser (udbud på vej)",
        "section_agreements": "Leverandøraftaler der udløber inden for 12 måneder",
        "section_agreements_note": "Aftalen skal snart i udbud igen: et godt tidspunkt at kontakte indkøberen.",
        "section_changed": "Ændret siden sidst",
        "buyer": "Ordregiver",
        "lot": "Delkontrakt",
        "value": "Anslået værdi",
        "value_unknown": "ikke oplyst",
        "deadline": "Frist",
        "expires": "Aftalen udløber",
        "supplier": "Nuværende leverandør",
        "why": "Derfor passer det til jer",
        "notes": "Værd at vide",
        "read": "Læs udbuddet",
        "no_link": "Find udbuddet hos ordregiveren (intet offentligt link)",
        "badge_reserved": "Forbeholdt virksomheder som jeres",
        "badge_social": "Social klausul",
        "badge_social_objective": "Sociale hensyn",
        "changed_deadline": "Fristen er flyttet fra {old} til {new}.",
        "changed_deadline_new": "Fristen er nu {new}.",
        "changed_cancelled": "Udbuddet er aflyst.",
        "subject": "Uge {week}: {count} nye udbud til {name}",
        "subject_one": "Uge {week}: 1 nyt udbud til {name}",
        "subject_top": " – {title}",
        "subject_none": "Uge {week}: ingen nye udbud til {name}",
        "subject_changed": "Uge {week}: ændringer i udbud til {name}",
        "footer_why": "I får denne e-mail, fordi {name} er tilmeldt Udbudsvagtens ugentlige overblik over"
                      " offentlige udbud og leverandøraftaler.",
        "unsubscribe": "Afmeld",
        "profile": "Jeres profil",
        "more": "Og {count} udbud mere passer til jer; de kommer med i næste uges e-mail.",
        "today": "i dag",
        "tomorrow": "i morgen",
        "days_left": "om {days} dage",
        "passed": "overskredet",
        "at": "kl.",
        "week": "uge",
    },
    "en": {
        "greeting": "Hello {name}",
        "intro_one": "Here is one new tender you could bid on, found in week {week}.",
        "intro_many": "Here are {count} new tenders you could bid on, found in week {week}.",
        "intro_none": "We found no new tenders for you in week {week}. We keep looking and will write again"
                      " next week.",
        "intro_changed": "Tenders we told you about earlier have changed.",
        "section_open": "Open tenders",
        "section_planning": "Early notice (tenders being planned)",
        "section_agreements": "Supplier agreements expiring within 12 months",
        "section_agreements_note": "A re-tender is coming: a good time to contact the buyer.",
        "section_changed": "Changed since last week",
        "buyer": "Buyer",
        "lot": "Lot",
        "value": "Estimated value",
        "value_unknown": "not given",
        "deadline": "Deadline",
        "expires": "Agreement expires",
        "supplier": "Current supplier",
        "why": "Why it matched",
        "notes": "Good to know",
        "read": "Read the notice",
        "no_link": "Ask the buyer for the documents (no public link)",
        "badge_reserved": "Reserved for enterprises like yours",
        "badge_social": "Social clause",
        "badge_social_objective": "Social considerations",
        "changed_deadline": "The deadline moved from {old} to {new}.",
        "changed_deadline_new": "The deadline is now {new}.",
        "changed_cancelled": "The tender was cancelled.",
        "subject": "Week {week}: {count} new tenders for {name}",
        "subject_one": "Week {week}: 1 new tender for {name}",
        "subject_top": " – {title}",
        "subject_none": "Week {week}: no new tenders for {name}",
        "subject_changed": "Week {week}: changes to tenders for {name}",
        "footer_why": "You receive this e-mail because {name} subscribed to the weekly overview of public tenders"
                      " and supplier agreements.",
        "unsubscribe": "Unsubscribe",
        "profile": "Your profile",
        "more": "{count} more tenders fit you; they come in next week's e-mail.",
        "today": "today",
        "tomorrow": "tomorrow",
        "days_left": "in {days} days",
        "passed": "passed",
        "at": "at",
        "week": "week",
    },
}


def label(language: str, key: str, **values: Any) -> str:
    """A fixed text of the digest in ``language``, with ``values`` filled in."""
    text = LABELS[language][key]
    return text.format(**values) if values else text


def days_left(deadline: date, *, today: date, language: str) -> str:
    """i dag / i morgen / om 3 dage / overskredet."""
    days = (deadline - today).days
    if days < 0:
        return label(language, "passed")
    if days == 0:
        return label(language, "today")
    if days == 1:
        return label(language, "tomorrow")
    return label(language, "days_left", days=days)


