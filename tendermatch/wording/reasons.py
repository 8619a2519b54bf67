"""Why a match fits and what to note before bidding, in Danish or English, worded from the
match's facts: the one place reasons are written. The digest, the match log, the CLI and
the staff console all show these sentences. A drawback (a lot larger than the enterprise
takes on, a place that is not confirmed, an execution reservation that may not mean what
it says) is never worded as a reason it fits. Pure functions.
"""

from __future__ import annotations

from datetime import date

from ..store.records import AgreementFact, CpvFact, KeywordFact, LotFact, MatchFacts, PlaceFact
from .formats import format_amount, format_date, nuts_name

DEADLINE_SOON_DAYS = 7  # a deadline this close is worth a note

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


def _keyword_text(item: KeywordFact, *, language: str) -> str | None:
    da = language == "da"
    if item.get("origin") == "description":
        return None
    field = FIELDS[language].get(item.get("field", ""), item.get("field", ""))
    keyword = _quoted(item.get("keyword", ""), language)
    if item.get("origin") in ("translation", "related"):
        found = _quoted(item.get("found") or item.get("term", ""), language)
        tongue = LANGUAGE_NAMES[language].get(item.get("language", ""), item.get("language", ""))
        if item["origin"] == "translation":
            return (f"{found} i {field} ({tongue} for jeres søgeord {keyword})" if da
                    else f"{found} in {field} ({tongue} for your keyword {keyword})")
        # Another concept of the keyword's trade is not the keyword in other words: say so.
        foreign = "" if item.get("language") in ("da", "en") else f"{tongue}, "
        return (f"{found} i {field} ({foreign}samme branche som jeres søgeord {keyword})" if da
                else f"{found} in {field} ({foreign}the same trade as your keyword {keyword})")
    term = _quoted(item.get("term", ""), language)
    # The words as the notice writes them, when they differ from the keyword (an inflection,
    # a compound, a spelling slip): the reader can find them in the notice.
    found = item.get("found") or ""
    shown = ""
    if found and " ".join(found.casefold().split()) != " ".join(str(item.get("term", "")).casefold().split()):
        shown = f" (som {_quoted(found, language)})" if da else f" (as {_quoted(found, language)})"
    if item.get("origin") == "synonym":
        return (f"{term} i {field}{shown} (samme som jeres søgeord {keyword})" if da
                else f"{term} in {field}{shown} (same as your keyword {keyword})")
    return f"Jeres søgeord {term} står i {field}{shown}" if da else f"Your keyword {term} is in {field}{shown}"


def _cpv_text(cpv: CpvFact, *, language: str) -> str:
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


def _place_text(place: PlaceFact, *, language: str) -> str:
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


def _lot_name(lot: LotFact, *, language: str) -> str:
    """'lot 2 “Title”' of a notice in lots, else 'the contract'."""
    da = language == "da"
    if (lot.get("lots") or 1) <= 1:
        return "Kontrakten" if da else "The contract"
    title = lot.get("title")
    title = f" {_quoted(title, language)}" if title else ""
    return f"Delkontrakt {lot.get('lot_id')}{title}" if da else f"Lot {lot.get('lot_id')}{title}"


def _value_texts(lot: LotFact, *, language: str, standalone: bool) -> tuple[list[str], list[str]]:
    """(reasons, notes) about the lot's value against the enterprise's limit. ``standalone``
    (the match log, the CLI): each names its lot, and a value without a limit or without
    an amount is said too, because nothing beside the sentence shows them (a digest item
    shows its lot and value above its reasons)."""
    da = language == "da"
    value, most = lot.get("value_dkk"), lot.get("max_value")
    prefix = f"{_lot_name(lot, language=language)}: " if standalone else ""
    if value is None:
        return [], ([prefix + ("værdien er ikke oplyst" if da else "value not given")] if standalone else [])
    amount = format_amount(value, "DKK", language=language)
    about = f"{prefix}{'omkring' if standalone else 'Omkring'} {amount}" if da else \
        f"{prefix}{'about' if standalone else 'About'} {amount}"
    if not most:
        return ([about] if standalone else []), []
    limit = format_amount(most, "DKK", language=language)
    if value <= most:
        return [f"{about}: inden for jeres grænse på {limit}" if da else f"{about}: within your limit of {limit}"], []
    times = f"{value / most:.1f}".replace(".", "," if da else ".")
    return [], [f"{about}: {times} gange jeres grænse på {limit}. Overvej at byde sammen med andre" if da
                else f"{about}: {times} times your limit of {limit}. Consider bidding with partners"]


def _agreement_text(agreement: AgreementFact, *, language: str) -> str:
    da = language == "da"
    supplier = agreement.get("supplier")
    expires = agreement.get("expires")
    try:
        when = format_date(date.fromisoformat(expires), language=language) if expires else None
    except ValueError:
        when = str(expires)
    if da:
        return f"Leverandøraftale{' med ' + supplier if supplier else ''}" + \
            (f", udløber {when}" if when else ", slutdatoen er ikke oplyst")
    return f"Supplier agreement{' with ' + supplier if supplier else ''}" + \
        (f", expires {when}" if when else ", end date not given")


def reason_texts(facts: MatchFacts, *, language: str, fallback: list[str] | None = None,
                 standalone: bool = False) -> list[str]:
    """Why a notice fits, in ``language``, from the match log's facts: only what speaks
    for it (drawbacks are ``note_texts``). ``standalone``: for a line that stands alone
    (the match log, the CLI), also the lot, its value and the agreement a digest item shows
    beside its reasons. Older log rows without facts fall back to the logged sentences."""
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
    reasons += _value_texts(facts.get("lot") or {}, language=language, standalone=standalone)[0]
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
    if standalone and facts.get("agreement") is not None:
        reasons.append(_agreement_text(facts["agreement"], language=language))
    return reasons


def note_texts(facts: MatchFacts, *, language: str, days_left: int | None = None,
               standalone: bool = False) -> list[str]:
    """What to know before bidding, in ``language``: a lot larger than the enterprise's
    limit (``standalone``: also a value not given), a deadline within a week, a place that
    is not confirmed, an execution reservation (BT-736) that is not a reserved competition."""
    if not facts:
        return []
    da = language == "da"
    notes = _value_texts(facts.get("lot") or {}, language=language, standalone=standalone)[1]
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
