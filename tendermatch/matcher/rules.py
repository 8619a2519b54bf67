"""The scoring rules, each a small pure function; ``engine`` applies them to many lots at once.

A lot's score (0-100) is relevance + social + size:
- relevance: text (0-45, keywords found in titles, CPV labels, descriptions) plus CPV
  (0-30, see ``cpv.cpv_relation``). A lot is sent only when relevance reaches
  ``min_relevance`` and passes the gate (see TITLE_MIN below).
- social: +25 for a lot reserved for enterprises like the profile's, +8 for a social
  objective or social clause. A lot reserved for others is never sent.
- size: +5..+10 for a lot at or under max_value (smaller, more), 0 when unknown,
  down to -15 for lots far above it: ranked low, not hidden.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np

from ..store.records import NoticeRecord

TEXT_MAX = 45.0
TEXT_RATE = 1.9  # one keyword in a title (or its translation) is enough: 80% of TEXT_MAX
MIN_RELEVANCE = 36.0
# The gate: the notice's own words must say it is the work. A lot is sent when one holds:
# - a specific keyword (or its translation) is in a title (match quality >= TITLE_MIN), or
# - one is in a description (quality x field weight >= SPECIFIC_WITH_CPV_MIN) and the code
#   evidence reaches CPV_SUPPORT_MIN points (a code in the profile's branch, a code just
#   above it, or a code whose label names the keyword) with a code in or near the profile's
#   branches among them (a label alone repeats the keyword the description already holds), or
# - the profile has no CPV codes and a specific keyword is in a description (>= SPECIFIC_MIN), or
# - the profile has no keywords and a code is in its branches (all it has to go on).
# A code alone is not enough for a profile with keywords: a broad code holds many trades.
TITLE_MIN = 0.8
CPV_ONLY_MIN_RELEVANCE = 27.0  # a profile without keywords: a code in its branch is enough
# A lot reserved for enterprises like the profile's needs this much less relevance: few
# enterprises may bid, so a weaker fit is still worth telling.
RESERVED_RELEVANCE_BONUS = 5.0
SPECIFIC_MIN = 0.7
SPECIFIC_WITH_CPV_MIN = 0.5
CPV_SUPPORT_MIN = 20

# How much a hit counts by where it is: a title says what the contract is, a CPV label
# what it is coded as, a description may mention anything.
FIELD_WEIGHTS = {"title": 1.0, "cpv": 0.8, "cpv-broad": 0.5, "description": 0.6, "translation": 0.5}

# Profile words by where they come from.
KEYWORD_WEIGHT = 1.0
SYNONYM_WEIGHT = 0.85
TRANSLATION_WEIGHT = 0.9  # a keyword's equivalent in the notice's language (``bridge``)
RELATED_WEIGHT = 0.75  # another concept of the keyword's trade (a "catering" keyword and school meals)
DESCRIPTION_WEIGHT = 0.15
GENERIC_WEIGHT = 0.15

# A profile keyword in the label of one of the lot's CPV codes: code evidence, like a code
# inside the profile's branch (not added to it: one code is one piece of evidence).
LABEL_POINTS = 27.0
# A secondary CPV code counts less than the main one, the less the longer the list.
SECONDARY_CODE_WEIGHT = 0.85
LONG_LIST_CODE_WEIGHT = 0.6
LONG_CODE_LIST = 4
# Specificity: a term found in at most COMMON_SHARE of the notices it is looked up in counts
# fully; one in a larger share counts less, down to GENERIC_FACTOR for one in every other
# notice ("maintenance", "social work"). Shares of fewer than MIN_SCOPE notices say nothing.
COMMON_SHARE = 0.02
GENERIC_FACTOR = 0.3
GENERIC_SHARE = 0.5
MIN_SCOPE = 50

RESERVED_POINTS = 25.0
SOCIAL_POINTS = 8.0
UNDER_MAX_POINTS = 5.0  # at or under max_value ...
SMALLER_POINTS = 5.0  # ... plus up to this much more the smaller the lot is
OVER_MAX_PER_DOUBLING = 5.0
OVER_MAX_FLOOR = -15.0

DEFAULT_RATES = {"DKK": 1.0, "EUR": 7.46, "SEK": 0.68, "NOK": 0.64, "GBP": 8.6}

# Stages nobody can bid on any more: a result, a modification of an awarded contract, a
# voluntary ex-ante notice announcing a direct award.
CLOSED_STAGES = ("result", "cont-modif", "dir-awa-pre")


def text_points(hits: Any) -> Any:
    """Text relevance from the sum of weighted keyword hits; saturates at ``TEXT_MAX``
    so ten weak hits do not beat two strong ones. Works on floats and numpy arrays."""
    return TEXT_MAX * (1.0 - np.exp(-TEXT_RATE * np.asarray(hits, dtype=np.float64)))


def is_goods(code: str) -> bool:
    """A CPV code for products (divisions 03-44 and 48), not works (45) or services (50-98)."""
    return code[:2] < "45" or code[:2] == "48"


def code_weight(*, main: bool, codes: int) -> float:
    """How much a lot's CPV code counts: its main code fully, a secondary code less, and less
    again in a long list."""
    if main:
        return 1.0
    return SECONDARY_CODE_WEIGHT if codes < LONG_CODE_LIST else LONG_LIST_CODE_WEIGHT


def specificity(found: int, scope: int) -> float:
    """An IDF-like factor for a term found in ``found`` of ``scope`` notices: 1 up to
    COMMON_SHARE, falling with the log of the share to GENERIC_FACTOR at GENERIC_SHARE."""
    if scope < MIN_SCOPE or found <= COMMON_SHARE * scope:
        return 1.0
    share = found / scope
    fall = math.log(share / COMMON_SHARE) / math.log(GENERIC_SHARE / COMMON_SHARE)
    return max(GENERIC_FACTOR, 1.0 - (1.0 - GENERIC_FACTOR) * fall)


def size_points(value_dkk: Any, max_value: float | None) -> Any:
    """Points for a lot's value against the profile's max_value (both DKK); NaN = unknown.
    Works on floats and numpy arrays."""
    value = np.asarray(value_dkk, dtype=np.float64)
    if max_value is None:
        return np.zeros_like(value)
    ratio = value / max_value
    with np.errstate(divide="ignore", invalid="ignore"):
        under = UNDER_MAX_POINTS + SMALLER_POINTS * (1.0 - np.clip(ratio, 0.0, 1.0))
        over = np.maximum(OVER_MAX_FLOOR, -OVER_MAX_PER_DOUBLING * np.log2(np.maximum(ratio, 1.0)))
        points = np.where(ratio <= 1.0, under, over)
    return np.where(np.isnan(value), 0.0, points)


def social_points(*, reserved_for_profile: Any, social: Any) -> Any:
    """Points for a lot reserved for the profile's kind of enterprise and for social
    objectives or clauses (booleans or boolean arrays)."""
    return RESERVED_POINTS * np.asarray(reserved_for_profile, dtype=np.float64) + SOCIAL_POINTS * np.asarray(
        social, dtype=np.float64
    )


def final_score(relevance: Any, social: Any, size: Any) -> Any:
    """The 0-100 score (1 at least, so a sent match never shows 0)."""
    return np.clip(np.rint(np.asarray(relevance) + social + size), 1, 100).astype(np.int64)


def to_dkk(amount: float | None, currency: str | None, rates: dict[str, float]) -> float:
    """An amount in DKK using ``rates`` (DKK per unit); NaN when unknown or no rate."""
    if amount is None or currency is None:
        return math.nan
    rate = rates.get(currency.upper())
    return float(amount) * rate if rate is not None else math.nan


def _iso_day(value: Any) -> bool:
    """True for None or text that starts with a valid ISO date."""
    if value is None:
        return True
    try:
        date.fromisoformat(value[:10])
    except (TypeError, ValueError):
        return False
    return True


def record_problem(record: Any) -> str | None:
    """Why a stored record cannot be matched at all (a field of a type no parser writes, as
    a store from an older version or a hand edit may hold), or None. The engine skips such a
    record alone: one odd notice must not stop the match, and so the digests, of everyone."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        return "not a notice record"
    if not isinstance(record.get("lots"), list) or not all(isinstance(lot, dict) for lot in record["lots"]):
        return "lots is not a list of lots"
    for owner in (record, *record["lots"]):
        for name in ("cpv", "nuts", "reserved", "social"):
            listed = owner.get(name) or []
            if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
                return f"{name} is not a list of text"
        value = owner.get("value")
        if value is not None and not (isinstance(value, dict) and isinstance(value.get("amount"), (int, float))
                                      and not isinstance(value.get("amount"), bool)
                                      and isinstance(value.get("currency"), str)):
            return "value is not an amount with a currency"
        for name in ("title", "description"):
            if owner.get(name) is not None and not isinstance(owner[name], str):
                return f"{name} is not text"
    if not isinstance(record.get("titles") or {}, dict):
        return "titles is not a table of texts"
    for name in ("deadline", "valid_until"):
        if not _iso_day(record.get(name)):
            return f"{name} is not a date"
    return None


def skip_reason(record: NoticeRecord, *, as_of: date | None) -> str | None:
    """Why a notice cannot be sent to anyone (None when it can): a result or other closed
    stage, cancelled or closed, its deadline before ``as_of``, an agreement that has
    expired. ``as_of=None`` skips the date checks."""
    if record.get("status") != "active":
        return f"status {record.get('status')}"
    agreement = record.get("kind") == "agreement"
    # An agreement is in force, not open for bids: its stage says nothing, its end date does.
    if not agreement and record.get("stage") in CLOSED_STAGES:
        return f"stage {record['stage']}"
    if as_of is not None:
        if agreement:
            until = record.get("valid_until")
            if until and until[:10] < as_of.isoformat():
                return f"agreement expired {until[:10]}"
        else:
            deadline = record.get("deadline")
            if deadline and deadline[:10] < as_of.isoformat():
                return f"deadline passed {deadline[:10]}"
    return None
