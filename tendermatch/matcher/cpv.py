"""CPV codes: labels in Danish and English, and how close a notice's code is to a profile's.

Labels come from ``data/cpv2008_en_da.csv`` (CPV 2008, derived from the eForms SDK
translations, CC BY 4.0; see ``data/SOURCES.md``).
"""

from __future__ import annotations

import csv
import io
from functools import lru_cache
from importlib import resources

# Points for the closest relation between a profile code and a notice code.
EXACT_POINTS = 30
WITHIN_POINTS = 27  # the notice code is inside the profile code's branch
# The notice code is broader than the profile's (its branch holds ours), by digits of
# that branch; or the two only share leading digits (siblings, cousins): more digits, more credit.
BROADER_POINTS = {2: 6, 3: 12, 4: 16, 5: 20}
RELATED_POINTS = {2: 4, 3: 8, 4: 12, 5: 16}


@lru_cache(maxsize=1)
def cpv_labels() -> dict[str, tuple[str, str]]:
    """code -> (English label, Danish label), read once from the shipped copy."""
    text = resources.files(__package__).joinpath("data/cpv2008_en_da.csv").read_text(encoding="utf-8")
    return {row["code"]: (row["label_en"], row["label_da"]) for row in csv.DictReader(io.StringIO(text))}


def branch(code: str) -> str:
    """The digits that define a code's branch: '55500000' -> '555', '03000000' -> '03'."""
    stripped = code.rstrip("0")
    return stripped if len(stripped) >= 2 else code[:2]


def cpv_relation(profile_code: str, code: str) -> tuple[int, str]:
    """(points, relation) of a notice's CPV code to a profile's: 'exact', 'within' (the
    profile code covers it), 'broader' (the notice code covers the profile's), 'related'
    (they share at least the division), or (0, '')."""
    if code == profile_code:
        return EXACT_POINTS, "exact"
    ours = branch(profile_code)
    if code.startswith(ours):
        return WITHIN_POINTS, "within"
    theirs = branch(code)
    if profile_code.startswith(theirs):
        return BROADER_POINTS[min(len(theirs), 5)], "broader"
    shared = 0
    for a, b in zip(code, profile_code, strict=False):
        if a != b:
            break
        shared += 1
    if shared >= 2:
        return RELATED_POINTS[min(shared, 5)], "related"
    return 0, ""


@lru_cache(maxsize=65536)
def best_cpv_relation(profile_codes: tuple[str, ...], codes: tuple[str, ...]) -> tuple[int, str, str, str]:
    """The closest pair: (points, relation, profile code, notice code); (0, '', '', '') if none."""
    best = (0, "", "", "")
    for profile_code in profile_codes:
        for code in codes:
            points, relation = cpv_relation(profile_code, code)
            if points > best[0]:
                best = (points, relation, profile_code, code)
    return best


def cpv_label(code: str, language: str = "en") -> str:
    """The label of a code in 'en' or 'da', or '' when the code is unknown."""
    labels = cpv_labels().get(code)
    if labels is None:
        return ""
    return labels[1] if language == "da" else labels[0]
