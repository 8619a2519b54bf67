"""A match's reasons in English words, from its facts: why it fits, and apart from that
what to note before bidding. A drawback (a lot larger than the enterprise takes on, a
place that is not confirmed, an execution reservation that may not mean what it says) is
never worded as a reason it fits. The digest words the same facts in Danish or English
(``notifier.texts``); these English sentences are the match log's and the CLI's.
"""

from __future__ import annotations

from typing import Any

from .text import content_words

LANGUAGE_NAMES = {"bg": "Bulgarian", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
                  "es": "Spanish", "et": "Estonian", "fi": "Finnish", "fr": "French", "ga": "Irish",
                  "hr": "Croatian", "hu": "Hungarian", "it": "Italian", "lt": "Lithuanian", "lv": "Latvian",
                  "mt": "Maltese", "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese",
                  "ro": "Romanian", "sk": "Slovak", "sl": "Slovenian", "sv": "Swedish"}


def _keyword_reason(item: dict[str, Any]) -> str | None:
    origin = item.get("origin")
    if origin == "description":
        return None
    field = item.get("field", "")
    term, found = item.get("term", ""), item.get("found", "")
    if origin == "translation":
        return f'"{found}" in the {field} ({LANGUAGE_NAMES.get(item.get("language", ""), item.get("language", ""))}' \
               f' for your keyword "{item.get("keyword")}")'
    shown = f' (as "{found}")' if found and found != " ".join(content_words(term)) else ""
    via = f' (for your keyword "{item.get("keyword")}")' if origin == "synonym" else ""
    return f'"{term}" in the {field}{shown}{via}'


def _cpv_reason(cpv: dict[str, Any]) -> str:
    code, label, mine = cpv.get("code", ""), (cpv.get("labels") or {}).get("en", ""), cpv.get("profile_code", "")
    shown = f"CPV {code}" + (f" ({label})" if label else "")
    return {
        "exact": f"{shown} is one of yours",
        "within": f"{shown} is within your {mine}",
        "broader": f"{shown} covers your {mine}",
        "label": f'{shown} names your keyword "{cpv.get("keyword", "")}"',
    }.get(cpv.get("relation", ""), f"{shown} is related to your {mine}")


def place_words(place: dict[str, Any]) -> str:
    """Where the lot is, and by which evidence, in English."""
    codes = ", ".join(place.get("inside") or place.get("codes") or [])
    evidence = place.get("evidence")
    if evidence == "place":
        return f"place of performance {codes} is in your regions"
    if evidence == "buyer-municipality":
        return f"the buyer is in {place.get('municipality')} ({codes}), in your regions"
    if evidence == "buyer-country":
        return f"the buyer is in {codes}; the place of performance is not given"
    return "the place of performance is not given"


def english(facts: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(why it fits, what to note) in English, from a match's facts."""
    fits: list[str] = []
    notes: list[str] = []
    for item in facts.get("keywords") or []:
        reason = _keyword_reason(item)
        if reason:
            fits.append(reason)
    if facts.get("cpv"):
        fits.append(_cpv_reason(facts["cpv"]))
    lot = facts.get("lot") or {}
    value, most = lot.get("value_dkk"), lot.get("max_value")
    lot_name = "the contract"
    if (lot.get("lots") or 1) > 1:
        lot_name = f'lot {lot.get("lot_id")}' + (f' "{lot["title"]}"' if lot.get("title") else "")
    if value is None:
        notes.append(f"{lot_name}: value not given")
    elif not most:
        fits.append(f"{lot_name}: about {value:,.0f} DKK")
    elif value <= most:
        fits.append(f"{lot_name}: about {value:,.0f} DKK, within your maximum of {most:,.0f} DKK")
    else:
        notes.append(f"{lot_name}: about {value:,.0f} DKK, {value / most:.1f} times your maximum of {most:,.0f} DKK")
    if facts.get("reserved"):
        fits.append(f"reserved for enterprises like yours ({', '.join(facts['reserved'])})")
    social = facts.get("social") or []
    objectives = [code for code in social if code not in ("clause", "reserved-execution")]
    if objectives:
        fits.append("social objective: " + ", ".join(objectives))
    if "clause" in social:
        fits.append("social clause in the text (apprentices, trainees or employment of the unemployed)")
    if "reserved-execution" in (facts.get("social") or []):
        notes.append("the buyer asks for the contract to be performed in sheltered employment programmes"
                     " (reserved execution): check what it requires; it is not a reserved competition")
    place = facts.get("place")
    if place:
        if place.get("evidence") in ("place", "buyer-municipality"):
            fits.append(place_words(place))
        else:
            notes.append(place_words(place))
    elif facts.get("nuts"):
        fits.append(f"performed in {', '.join(facts['nuts'][:3])}")
    agreement = facts.get("agreement")
    if agreement:
        supplier = agreement.get("supplier")
        expires = agreement.get("expires")
        fits.append(f"supplier agreement{' with ' + supplier if supplier else ''}"
                    f"{', expires ' + expires if expires else ', end date not given'}")
    return fits, notes
