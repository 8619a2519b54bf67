"""The de-duplication and versioning rules: when two records are one notice, and how a
newer or richer copy, or a change notice, updates the stored one."""

from __future__ import annotations

from typing import Any

from rapidfuzz import fuzz

from ..store.blocking import normalise_text

# Richer formats win when the same notice comes from several sources.
FORMAT_RANK = {"eforms": 5, "ted-xml": 5, "ted-api": 3, "ocds": 3, "feed": 1, "html": 1}


# Cross-source de-duplication thresholds (rapidfuzz scores 0-100) on normalised text.
TITLE_THRESHOLD = 88
BUYER_THRESHOLD = 80

_MERGE_FIELDS = ("title", "titles", "description", "language", "buyer", "supplier", "cpv", "nuts", "value",
                 "deadline", "published", "valid_from", "valid_until", "url", "reserved", "social",
                 "framework_agreement", "procedure_id", "notice_version", "lots", "kind", "stage")


def same_real_notice(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True when two records from different sources describe one notice: titles alike
    (in any language either carries), buyers alike when both are known, deadlines within
    a day (the caller's candidate query already ensured that)."""
    titles_a, titles_b = _comparable_titles(a), _comparable_titles(b)
    best = max((fuzz.token_sort_ratio(x, y, score_cutoff=TITLE_THRESHOLD) for x in titles_a for y in titles_b),
               default=0)
    if best < TITLE_THRESHOLD:  # the titles first: most candidates differ there, and it is cheaper
        return False
    both_buyers = bool((a.get("buyer") or {}).get("name") and (b.get("buyer") or {}).get("name"))
    return best >= (TITLE_THRESHOLD if both_buyers else 95) and same_buyer(a, b)


def _comparable_titles(record: dict[str, Any]) -> set[str]:
    """The original title and the Danish and English ones: what a municipal page would show.
    (TED's titles in every EU language are machine-made from the CPV: no help here.)"""
    titles = record.get("titles") or {}
    return {normalise_text(t) for t in (record.get("title"), titles.get("da"), titles.get("en")) if t}


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [name for name in (*_MERGE_FIELDS, "status") if old.get(name) != new.get(name)]


def _empty(value: Any) -> bool:
    return value in (None, "", [], {}, False)


def fill_missing(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with its empty fields filled from ``new``."""
    merged = dict(old)
    for name in _MERGE_FIELDS:
        if _empty(merged.get(name)) and not _empty(new.get(name)):
            merged[name] = new[name]
    if new.get("titles"):
        merged["titles"] = {**new["titles"], **(old.get("titles") or {})}
    return merged


def override(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` over ``old``: ``new``'s non-empty fields win, the id stays."""
    merged = dict(old)
    for name in _MERGE_FIELDS:
        if not _empty(new.get(name)):
            merged[name] = new[name]
    merged["titles"] = {**(old.get("titles") or {}), **(new.get("titles") or {})}
    if new.get("status") == "cancelled":
        merged["status"] = "cancelled"
    merged["id"] = old["id"]
    return merged


def apply_change(old: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """A change notice applied to the notice it changes. An eForms change notice restates
    the whole notice: its values win. A corrigendum (stage 'change', e.g. TED F14) carries
    only what changed: the deadline and, for a cancellation, the status."""
    if change.get("stage") != "change":
        merged = override(old, change)
    else:
        merged = dict(old)
        if change.get("deadline"):
            merged["deadline"] = change["deadline"]
        if change.get("notice_version"):
            merged["notice_version"] = change["notice_version"]
    if change.get("status") == "cancelled":
        merged["status"] = "cancelled"
    merged["id"] = old["id"]
    return merged


def same_buyer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True unless both buyers are known and clearly differ."""
    buyer_a = normalise_text((a.get("buyer") or {}).get("name"))
    buyer_b = normalise_text((b.get("buyer") or {}).get("name"))
    return not (buyer_a and buyer_b) or fuzz.token_set_ratio(buyer_a, buyer_b) >= BUYER_THRESHOLD


def published_before(day: str | None, other: str | None) -> bool:
    """True when both dates are known and ``day`` is earlier."""
    return bool(day and other and day < other)


def is_older(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """True when ``new`` was published before ``old`` (both dates known)."""
    return bool(new.get("published") and old.get("published") and new["published"] < old["published"])
