"""Everything a digest says, in Danish and English: labels, dates, amounts and the
reasons a notice matched (rebuilt from the match log's facts, so each reader gets them in
their own language). Pure functions; no jinja2 and no store here.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

LANGUAGES = ("da", "en")
DEADLINE_SOON_DAYS = 7  # a deadline this close is worth a note

MONTHS = {
    "da": ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober",
           "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}

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

# Where in a notice a keyword was found (the matcher's field names).
FIELDS = {
    "da": {"lot title": "delkontraktens titel", "title": "titlen", "CPV label": "CPV-betegnelsen",
           "lot description": "delkontraktens beskrivelse", "description": "beskrivelsen",
           "translated title": "den oversatte titel"},
    "en": {"lot title": "the lot title", "title": "the title", "CPV label": "the CPV label",
           "lot description": "the lot description", "description": "the description",
           "translated title": "the translated title"},
}

# eForms social-objective codes (BT-775) and the text-found social clause.
SOCIAL = {
    "da": {"clause": "social klausul (lærlinge, praktikanter eller ledige)", "soc-obj": "sociale hensyn",
           "opp": "beskæftigelse af udsatte grupper", "work-cond": "gode arbejdsvilkår",
           "acc-all": "tilgængelighed for alle", "gen-eq": "ligestilling mellem kønnene",
           "et-eq": "etnisk ligestilling", "hum-right": "menneskerettigheder", "other": "andre sociale hensyn"},
    "en": {"clause": "social clause (apprentices, trainees or the unemployed)", "soc-obj": "social objective",
           "opp": "employment opportunities for disadvantaged groups", "work-cond": "fair working conditions",
           "acc-all": "accessibility for all", "gen-eq": "gender equality", "et-eq": "ethnic equality",
           "hum-right": "human rights", "other": "other social objectives"},
}

RESERVED = {
    "da": {"res-ws": "beskyttede værksteder og social integration", "res-pub-ser": "organisationer med en"
           " public service-mission"},
    "en": {"res-ws": "sheltered workshops and social integration", "res-pub-ser": "organisations with a"
           " public-service mission"},
}


@lru_cache(maxsize=1)
def _nuts_names() -> dict[str, tuple[str, str]]:
    """NUTS code -> (English name, Danish name), from ``data/nuts_all_en_da.csv``."""
    with resources.files(__package__).joinpath("data/nuts_all_en_da.csv").open(encoding="utf-8") as file:
        return {row["code"]: (row["label_en"], row["label_da"]) for row in csv.DictReader(file)}


def nuts_name(code: str, *, language: str) -> str:
    """A place of performance by name ("Byen København (DK011)"), or the bare code if unknown."""
    names = _nuts_names().get(code)
    return f"{names[1] if language == 'da' else names[0]} ({code})" if names else code


def label(language: str, key: str, **values: Any) -> str:
    """A fixed text of the digest in ``language``, with ``values`` filled in."""
    text = LABELS[language][key]
    return text.format(**values) if values else text


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
        return f"{day} {label(language, 'at')} {clock}"
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


def _quoted(text: str, language: str) -> str:
    return f"»{text}«" if language == "da" else f"“{text}”"


LANGUAGE_NAMES = {
    "da": {"bg": "bulgarsk", "cs": "tjekkisk", "da": "dansk", "de": "tysk", "el": "græsk", "en": "engelsk",
           "es": "spansk", "et": "estisk", "fi": "finsk", "fr": "fransk", "ga": "irsk", "hr": "kroatisk",
           "hu": "ungarsk", "it": "italiensk", "lt": "litauisk", "lv": "lettisk", "mt": "maltesisk",
           "nl": "nederlandsk", "no": "norsk", "pl": "polsk", "pt": "portugisisk", "ro": "rumænsk",
           "sk": "slovakisk", "sl": "slovensk", "sv": "svensk"},
    "en": {"bg": "Bulgarian", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
           "es": "Spanish", "et": "Estonian", "fi": "Finnish", "fr": "French", "ga": "Irish", "hr": "Croatian",
           "hu": "Hungarian", "it": "Italian", "lt": "Lithuanian", "lv": "Latvian", "mt": "Maltese",
           "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian",
           "sk": "Slovak", "sl": "Slovenian", "sv": "Swedish"},
}
COUNTRY_NAMES = {
    "da": {"DK": "Danmark", "SE": "Sverige", "NO": "Norge", "DE": "Tyskland", "UK": "Storbritannien",
           "FR": "Frankrig", "NL": "Holland", "PL": "Polen", "ES": "Spanien", "IT": "Italien", "FI": "Finland",
           "BE": "Belgien", "EL": "Grækenland", "BG": "Bulgarien", "IE": "Irland"},
    "en": {"DK": "Denmark", "SE": "Sweden", "NO": "Norway", "DE": "Germany", "UK": "the United Kingdom",
           "FR": "France", "NL": "the Netherlands", "PL": "Poland", "ES": "Spain", "IT": "Italy", "FI": "Finland",
           "BE": "Belgium", "EL": "Greece", "BG": "Bulgaria", "IE": "Ireland"},
}
RESERVED_EXECUTION = "reserved-execution"


def _keyword_text(item: dict[str, Any], *, language: str) -> str | None:
    da = language == "da"
    if item.get("origin") == "description":
        return None
    field = FIELDS[language].get(item.get("field", ""), item.get("field", ""))
    keyword = _quoted(item.get("keyword", ""), language)
    if item.get("origin") == "translation":
        found = _quoted(item.get("found") or item.get("term", ""), language)
        tongue = LANGUAGE_NAMES[language].get(item.get("language", ""), item.get("language", ""))
        return (f"{found} i {field} ({tongue} for jeres søgeord {keyword})" if da
                else f"{found} in {field} ({tongue} for your keyword {keyword})")
    term = _quoted(item.get("term", ""), language)
    if item.get("origin") == "synonym":
        return (f"{term} i {field} (samme som jeres søgeord {keyword})" if da
                else f"{term} in {field} (same as your keyword {keyword})")
    return f"Jeres søgeord {term} står i {field}" if da else f"Your keyword {term} is in {field}"


def _cpv_text(cpv: dict[str, Any], *, language: str) -> str:
    da = language == "da"
    code, mine = cpv.get("code", ""), cpv.get("profile_code", "")
    name = (cpv.get("labels") or {}).get(language)
    shown = f"CPV {code}" + (f" ({name})" if name else "")
    relation = str(cpv.get("relation") or "")
    if relation == "label":
        keyword = _quoted(cpv.get("keyword", ""), language)
        return f"{shown} svarer til jeres søgeord {keyword}" if da else f"{shown} names your keyword {keyword}"
    if da:
        return {"exact": f"{shown} er en af jeres koder", "within": f"{shown} hører under jeres {mine}",
                "broader": f"{shown} dækker jeres {mine}"}.get(relation, f"{shown} er beslægtet med jeres {mine}")
    return {"exact": f"{shown} is one of your codes", "within": f"{shown} is within your {mine}",
            "broader": f"{shown} covers your {mine}"}.get(relation, f"{shown} is related to your {mine}")


def _place_text(place: dict[str, Any], *, language: str) -> str:
    da = language == "da"
    evidence = place.get("evidence")
    codes = place.get("inside") or place.get("codes") or []
    if evidence == "place":
        places = ", ".join(nuts_name(code, language=language) for code in codes[:3])
        return f"Udføres i {places}" if da else f"Performed in {places}"
    if evidence == "buyer-municipality":
        where = f"{place.get('municipality')} ({nuts_name(codes[0], language=language)})" if codes \
            else str(place.get("municipality"))
        return (f"Ordregiveren ligger i {where}, i jeres område" if da
                else f"The buyer is in {where}, in your area")
    if evidence == "buyer-country" and codes:
        country = COUNTRY_NAMES[language].get(codes[0], codes[0])
        return (f"Ordregiveren er i {country}, men udførelsesstedet er ikke oplyst: tjek at det er i jeres område"
                if da else f"The buyer is in {country}, but the place of performance is not given: check it is"
                           f" in your area")
    return "Udførelsesstedet er ikke oplyst" if da else "The place of performance is not given"


def reason_texts(facts: dict[str, Any], *, language: str, fallback: list[str] | None = None) -> list[str]:
    """Why a notice fits, in ``language``, from the match log's facts: only what speaks
    for it (drawbacks are ``note_texts``). Older log rows without facts fall back to the
    logged English sentences."""
    if not facts:
        return list(fallback or [])
    da = language == "da"
    reasons: list[str] = []
    for item in facts.get("keywords", []):
        text = _keyword_text(item, language=language)
        if text:
            reasons.append(text)
    if facts.get("cpv"):
        reasons.append(_cpv_text(facts["cpv"], language=language))
    lot = facts.get("lot") or {}
    value, most = lot.get("value_dkk"), lot.get("max_value")
    if value is not None and most and value <= most:
        amount, limit = format_amount(value, "DKK", language=language), format_amount(most, "DKK", language=language)
        reasons.append(f"Omkring {amount}: inden for jeres grænse på {limit}" if da
                       else f"About {amount}: within your limit of {limit}")
    for code in facts.get("reserved", []):
        group = RESERVED[language].get(code, code)
        reasons.append(f"Forbeholdt {group}, som I kan byde som" if da
                       else f"Reserved for {group}, which you qualify as")
    social = [SOCIAL[language].get(code, code) for code in facts.get("social", []) if code != RESERVED_EXECUTION]
    if social:
        reasons.append(("Sociale hensyn: " if da else "Social considerations: ") + ", ".join(social))
    place = facts.get("place")
    if place is not None:
        if place.get("evidence") in ("place", "buyer-municipality"):
            reasons.append(_place_text(place, language=language))
    elif facts.get("nuts"):  # a profile without regions: where it is, for information
        places = ", ".join(nuts_name(code, language=language) for code in facts["nuts"][:3])
        reasons.append(("Udføres i " if da else "Performed in ") + places)
    return reasons


def note_texts(facts: dict[str, Any], *, language: str, days_left: int | None = None) -> list[str]:
    """What to know before bidding, in ``language``: a lot larger than the enterprise's
    limit, a deadline within a week, a place that is not confirmed, an execution
    reservation (BT-736) that is not a reserved competition."""
    if not facts:
        return []
    da = language == "da"
    notes: list[str] = []
    lot = facts.get("lot") or {}
    value, most = lot.get("value_dkk"), lot.get("max_value")
    if value is not None and most and value > most:
        amount, limit = format_amount(value, "DKK", language=language), format_amount(most, "DKK", language=language)
        times = f"{value / most:.1f}".replace(".", "," if da else ".")
        notes.append(f"Omkring {amount}: {times} gange jeres grænse på {limit}. Overvej at byde sammen med andre"
                     if da else f"About {amount}: {times} times your limit of {limit}. Consider bidding with"
                                f" partners")
    if days_left is not None and 0 <= days_left <= DEADLINE_SOON_DAYS:
        notes.append(("Fristen er i dag" if days_left == 0 else f"Kun {days_left} dage til fristen") if da
                     else ("The deadline is today" if days_left == 0 else f"Only {days_left} days to the deadline"))
    if RESERVED_EXECUTION in (facts.get("social") or []):
        notes.append("Ordregiveren ønsker kontrakten udført i beskyttet beskæftigelse (reserveret udførelse). Det"
                     " er ikke et reserveret udbud: læs betingelserne" if da else
                     "The buyer wants the contract performed in sheltered employment (reserved execution). It is"
                     " not a reserved tender: read the conditions")
    place = facts.get("place")
    if place is not None and place.get("evidence") not in ("place", "buyer-municipality"):
        notes.append(_place_text(place, language=language))
    return notes
