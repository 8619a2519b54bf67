"""Enterprise capability profiles: what an enterprise does, where, and how large a lot it can take.

The format is ``config/profiles/<id>.toml`` (see ``profile.example.toml`` in the spec).
``parse_profile`` turns one parsed TOML table into a ``Profile`` or raises
``ProfileError`` naming the key; reading the files is the worker's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

RESERVED_CODES = ("res-ws", "res-pub-ser")
LANGUAGES = ("da", "en")
DEFAULT_MAX_ITEMS = 20

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
# Deliberately plain: one @, a dot in the domain, no spaces or angle brackets (which
# would let an address smuggle in extra recipients or headers).
_EMAIL = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[A-Za-z0-9-]{2,}")
_CPV = re.compile(r"[0-9]{8}")
_NUTS = re.compile(r"[A-Z]{2}[0-9A-Z]{0,3}")


class ProfileError(ValueError):
    """Raised by ``parse_profile`` when a profile has an unknown key or a bad value;
    ``key`` names the key (for the one-line message: file, key, what is wrong)."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class Profile:
    """One enterprise. Every field but ``id``, ``name`` and ``emails`` has a default."""

    id: str
    name: str
    emails: tuple[str, ...]
    language: str = "da"
    description: str = ""
    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    cpv: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()  # NUTS prefixes; empty = anywhere
    max_value: float | None = None  # DKK
    reserved_eligible: tuple[str, ...] = ()
    max_items: int = DEFAULT_MAX_ITEMS
    source: str | None = field(default=None, compare=False)  # the file it came from


def _strings(key: str, value: Any, *, pattern: re.Pattern[str] | None = None, what: str = "") -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProfileError(key, "expected a list of strings")
    items = tuple(item.strip() for item in value)
    for item in items:
        if not item:
            raise ProfileError(key, "empty string in the list")
        if pattern is not None and not pattern.fullmatch(item):
            raise ProfileError(key, f"{item!r} is not {what}")
    return items


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ProfileError(key, "expected a string")
    return value.strip()


def parse_profile(data: dict[str, Any], *, source: str | None = None) -> Profile:
    """Check one profile table and return it as a ``Profile``.

    >>> parse_profile({"id": "vask", "name": "Vask", "emails": ["a@vask.example"], "cpv": ["98310000"]}).cpv
    ('98310000',)
    """
    known = set(Profile.__dataclass_fields__) - {"source"}
    for key in data:
        if key not in known:
            raise ProfileError(key, f"unknown key (known: {', '.join(sorted(known))})")
    for key in ("id", "name", "emails"):
        if key not in data:
            raise ProfileError(key, "missing (id, name and emails are required)")

    profile_id = _string("id", data["id"])
    if not _ID.fullmatch(profile_id):
        raise ProfileError("id", f"{profile_id!r} must be letters, digits and '-'")
    name = _string("name", data["name"])
    if not name:
        raise ProfileError("name", "empty")
    emails = _strings("emails", data["emails"], pattern=_EMAIL, what="an e-mail address")
    if not emails:
        raise ProfileError("emails", "at least one address is needed")
    language = _string("language", data.get("language", "da"))
    if language not in LANGUAGES:
        raise ProfileError("language", f"{language!r} is not one of {', '.join(LANGUAGES)}")
    cpv = _strings("cpv", data.get("cpv", []), pattern=_CPV, what="an 8-digit CPV code")
    regions = _strings("regions", data.get("regions", []), pattern=_NUTS, what="a NUTS code or prefix (like DK01)")
    reserved = _strings("reserved_eligible", data.get("reserved_eligible", []))
    for code in reserved:
        if code not in RESERVED_CODES:
            raise ProfileError("reserved_eligible", f"{code!r} is not one of {', '.join(RESERVED_CODES)}")

    max_value = data.get("max_value")
    if max_value is not None:
        if isinstance(max_value, bool) or not isinstance(max_value, (int, float)) or not max_value > 0:
            raise ProfileError("max_value", "expected a positive amount in DKK")
        max_value = float(max_value)
    max_items = data.get("max_items", DEFAULT_MAX_ITEMS)
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
        raise ProfileError("max_items", "expected a whole number of at least 1")

    keywords = _strings("keywords", data.get("keywords", []))
    if not keywords and not cpv:
        raise ProfileError("keywords", "nothing to match on: give keywords or cpv codes")
    return Profile(
        id=profile_id,
        name=name,
        emails=emails,
        language=language,
        description=_string("description", data.get("description", "")),
        keywords=keywords,
        exclude=_strings("exclude", data.get("exclude", [])),
        cpv=cpv,
        regions=regions,
        max_value=max_value,
        reserved_eligible=reserved,
        max_items=max_items,
        source=source,
    )
